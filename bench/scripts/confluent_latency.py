#!/usr/bin/python3
"""Produce latency of librdkafka (confluent-kafka-python) at a fixed rate.

Usage: confluent_latency.py BOOTSTRAP TOPIC RATE SECONDS RECORD_SIZE [WARMUP]

WARMUP (seconds, default 0) is the start of the run whose records are not
counted: the client's start-up (connections, metadata, producer id).

The client keeps its defaults except enable.idempotence=true (so acks=all
and five requests in flight per broker) and linger.ms=5, as issue 13's
target 3 states. Records have no key (librdkafka's default partitioner
then spreads them). Each record is timed from produce() to its delivery
report by librdkafka itself (Message.latency()). Records are sent on a
fixed schedule: at each wake-up the ones due since the start go out, so a
slow wake-up sends a small burst rather than lowering the rate.

Prints one JSON line on stdout: records, errors, first_error, seconds,
p50_ms, p99_ms, max_ms. Used by bench/compare (make compare). Debian's
python3-confluent-kafka belongs to /usr/bin/python3.
"""
import json
import sys
import time

from confluent_kafka import Producer


def main():
    boot, topic = sys.argv[1], sys.argv[2]
    rate, seconds, size = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    warmup = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    lat = []
    errors = [0, ""]

    def delivered(err, msg):
        if err is not None:
            errors[0] += 1
            if not errors[1]:
                errors[1] = str(err)
            return
        l = msg.latency()
        # None: librdkafka did not time it (never seen). A record is
        # counted when it was produced after the warm-up.
        if l is not None and time.monotonic() - l >= counted_from[0]:
            lat.append(l)

    p = Producer({"bootstrap.servers": boot, "enable.idempotence": True, "linger.ms": 5})
    value = b"x" * size
    start = time.monotonic()
    counted_from = [start + warmup]
    sent = 0
    while True:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        while sent < due:
            try:
                p.produce(topic, value, on_delivery=delivered)
            except BufferError:
                p.poll(0.001)
                continue
            sent += 1
        p.poll(0)
        nxt = start + (sent + 1) / rate
        time.sleep(max(min(nxt - time.monotonic(), seconds - elapsed), 0.001))
    produced_for = time.monotonic() - start
    left = p.flush(60)
    if left:
        errors[0] += left
        errors[1] = errors[1] or "%d records not delivered within 60s" % left
    lat.sort()

    def pct(q):
        if not lat:
            return 0.0
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000

    print(json.dumps({
        "records": len(lat), "errors": errors[0], "first_error": errors[1],
        "seconds": produced_for, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
        "max_ms": lat[-1] * 1000 if lat else 0.0,
    }))


if __name__ == "__main__":
    main()
