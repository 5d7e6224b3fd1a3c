"""librdkafka (python3-confluent-kafka) over TLS against a Sluice agent.

Usage: confluent_tls.py BOOTSTRAP CA_PEM [CLIENT_CERT_PEM CLIENT_KEY_PEM]

security.protocol=SSL, the agent's certificate verified against CA_PEM
(host name included); with a client certificate and key, mutual TLS.
Produces N records (idempotent, acks=all) to a fresh topic, consumes them
back and compares them exactly. Prints "PASS" at the end; exits non-zero
with a message on the first mismatch.
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer

BOOT, CA = sys.argv[1], sys.argv[2]
N = 300

conf = {
    "bootstrap.servers": BOOT,
    "security.protocol": "SSL",
    "ssl.ca.location": CA,
    "ssl.endpoint.identification.algorithm": "https",
}
if len(sys.argv) > 4:
    conf["ssl.certificate.location"] = sys.argv[3]
    conf["ssl.key.location"] = sys.argv[4]


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


topic = "py-tls-" + uuid.uuid4().hex[:8]
errors = []
p = Producer(dict(conf, **{"enable.idempotence": True, "acks": "all"}))
for i in range(N):
    p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0,
              on_delivery=lambda err, msg: err and errors.append(err))
if p.flush(60) != 0 or errors:
    fail("produce: %d unflushed, errors %s" % (len(p), errors[:3]))

c = Consumer(dict(conf, **{"group.id": "g-" + topic, "auto.offset.reset": "earliest",
                           "enable.auto.commit": False}))
c.subscribe([topic])
got = []
deadline = time.time() + 60
while len(got) < N and time.time() < deadline:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        raise KafkaException(m.error())
    got.append((m.key(), m.value()))
c.close()
want = [(b"k%d" % i, b"v%d" % i) for i in range(N)]
if got != want:
    fail("consumed %d records, first difference at %s" % (
        len(got), next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), len(got))))
print("ok tls %d records%s" % (N, " mtls" if len(sys.argv) > 4 else ""))
print("PASS")
