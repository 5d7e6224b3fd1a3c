#!/usr/bin/python3
"""Produce latency of librdkafka (python3-confluent-kafka) against Kafka.

Usage: rdkafka_latency.py BOOTSTRAP [--rate 5000] [--duration 15]
         [--warmup 2] [--partitions 16] [--size 1024] [--linger 5]
         [--idempotence true|false] [--topic NAME]

Creates a fresh topic with PARTITIONS partitions, then produces SIZE-byte
values keyed over 64 keys at RATE records a second for DURATION seconds
with acks=all, linger.ms=LINGER and enable.idempotence as given, every
other setting at librdkafka's default. Each record is timed from
produce() to its delivery callback; records produced in the first WARMUP
seconds (connections, metadata) are not counted. Prints one line:

  rdkafka idempotence=true rate=5000 n=65000 errors=0 p50_ms=… p99_ms=… max_ms=…

Run it with Debian's /usr/bin/python3 (python3-confluent-kafka belongs to
it). Used for BENCHMARKS.md "Produce latency with idempotent clients".
"""
import argparse
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--linger", type=int, default=5)
    ap.add_argument("--idempotence", default="true")
    ap.add_argument("--topic", default="")
    a = ap.parse_args()
    topic = a.topic or "rdlat-" + uuid.uuid4().hex[:8]

    adm = AdminClient({"bootstrap.servers": a.bootstrap})
    for f in adm.create_topics([NewTopic(topic, a.partitions, 1)]).values():
        f.result(30)

    p = Producer({
        "bootstrap.servers": a.bootstrap,
        "acks": "all",
        "linger.ms": a.linger,
        "enable.idempotence": a.idempotence,
    })
    value = b"x" * a.size
    keys = [("k%02d" % i).encode() for i in range(64)]
    lat = []
    errors = [0]
    start = time.monotonic()
    counted_from = start + a.warmup

    def cb(t0):
        def done(err, msg):
            if err is not None:
                errors[0] += 1
            elif t0 >= counted_from:
                lat.append(time.monotonic() - t0)
        return done

    n = 0
    end = start + a.warmup + a.duration
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * a.rate)
        while n < due:
            t0 = time.monotonic()
            while True:
                try:
                    p.produce(topic, value, key=keys[n % 64], on_delivery=cb(t0))
                    break
                except BufferError:
                    p.poll(0.001)
            n += 1
        p.poll(0.0005)
    p.flush(60)
    lat.sort()

    def q(x):
        return lat[min(len(lat) - 1, int(x * len(lat)))] * 1000 if lat else float("nan")

    print("rdkafka idempotence=%s rate=%d n=%d errors=%d p50_ms=%.0f p99_ms=%.0f max_ms=%.0f"
          % (a.idempotence, a.rate, len(lat), errors[0], q(0.50), q(0.99), (lat[-1] * 1000 if lat else float("nan"))))


if __name__ == "__main__":
    main()
