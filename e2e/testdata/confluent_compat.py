"""librdkafka (python3-confluent-kafka) against a Sluice agent.

Usage: confluent_compat.py BOOTSTRAP

For every compression codec: produce records with keys and headers
(idempotent, acks=all), consume them back and compare exactly. Then a
consumer group reads a topic, commits, and a second consumer of the same
group resumes after the committed offsets. Exits non-zero with a message on
the first mismatch.
"""
import sys
import uuid

from confluent_kafka import Consumer, KafkaException, Producer

BOOT = sys.argv[1]
N = 500


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def produce(topic, codec, start, n):
    errors = []
    p = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "acks": "all",
                  "compression.type": codec, "linger.ms": 5})

    def cb(err, _msg):
        if err is not None:
            errors.append(err)

    for i in range(start, start + n):
        p.produce(topic, key=b"k%d" % i, value=(b"v%d-" % i) * (i % 40 + 1),
                  headers=[("i", b"%d" % i)], on_delivery=cb)
        p.poll(0)
    left = p.flush(30)
    if left or errors:
        fail("%s: %d unflushed, errors %s" % (codec, left, errors[:3]))


def consume(conf, topic, want, timeout=30):
    c = Consumer(conf)
    c.subscribe([topic])
    got = []
    import time
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        got.append(m)
    return c, got


def check_codecs():
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        topic = "py-" + codec
        produce(topic, codec, 0, N)
        c, got = consume({"bootstrap.servers": BOOT, "group.id": "py-check-" + codec,
                          "auto.offset.reset": "earliest"}, topic, N)
        c.close()
        if len(got) != N:
            fail("%s: consumed %d of %d" % (codec, len(got), N))
        seen = {}
        for m in got:
            i = int(dict(m.headers())["i"])
            if m.key() != b"k%d" % i or m.value() != (b"v%d-" % i) * (i % 40 + 1):
                fail("%s: record %d differs" % (codec, i))
            if i in seen:
                fail("%s: record %d twice" % (codec, i))
            seen[i] = True
            last = seen.get(("p", m.partition()), -1)
            if m.offset() <= last:
                fail("%s: partition %d offsets not increasing" % (codec, m.partition()))
            seen[("p", m.partition())] = m.offset()
        print("ok", codec, len(got))


def check_group_resume():
    topic = "py-group"
    group = "py-group-" + uuid.uuid4().hex[:8]
    produce(topic, "none", 0, 300)
    conf = {"bootstrap.servers": BOOT, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False}
    c, got = consume(conf, topic, 300)
    if len(got) != 300:
        fail("group: first consumer read %d of 300" % len(got))
    c.commit(asynchronous=False)
    c.close()
    produce(topic, "none", 300, 100)
    c, got = consume(conf, topic, 100)
    extra = c.poll(1.0)
    c.close()
    vals = sorted(int(dict(m.headers())["i"]) for m in got)
    if vals != list(range(300, 400)) or (extra is not None and not extra.error()):
        fail("group: resumed consumer read %d records (%s...)" % (len(vals), vals[:5]))
    print("ok group resume")


check_codecs()
check_group_resume()
print("PASS")
