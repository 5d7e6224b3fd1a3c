"""librdkafka (python3-confluent-kafka) logging in to a Sluice agent with SASL.

Usage: confluent_sasl.py BOOTSTRAP SECURITY_PROTOCOL MECHANISM USER PASSWORD ok|refused [KEY=VALUE...]

  ok       produce 20 records (idempotent, acks=all) to py-sasl-<mechanism>,
           consume them back and compare; print "ok MECHANISM".
  refused  the login must fail: AdminClient.list_topics raises, and the
           error callback reports an authentication error; print
           "refused MECHANISM <error>".

SECURITY_PROTOCOL is SASL_PLAINTEXT here (SASL_SSL once the listener has
TLS); KEY=VALUE are more librdkafka properties (ssl.ca.location, ...). Prints "PASS" at the end; exits non-zero with a message otherwise.
"""
import sys
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

BOOT, PROTO, MECH, USER, PASSWORD, EXPECT = sys.argv[1:7]
EXTRA = dict(kv.split("=", 1) for kv in sys.argv[7:])
N = 20


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def conf(**extra):
    c = {
        "bootstrap.servers": BOOT,
        "security.protocol": PROTO,
        "sasl.mechanisms": MECH,
        "sasl.username": USER,
        "sasl.password": PASSWORD,
    }
    c.update(EXTRA)
    c.update(extra)
    return c


def ok():
    topic = "py-sasl-" + MECH.lower()
    p = Producer(conf(**{"enable.idempotence": True, "acks": "all"}))
    sent = [("k%d" % i, "value %d %s" % (i, uuid.uuid4().hex)) for i in range(N)]
    errs = []
    for k, v in sent:
        p.produce(topic, key=k, value=v, on_delivery=lambda err, msg: err and errs.append(err))
    if p.flush(30) != 0 or errs:
        fail("produce: %s" % errs)
    c = Consumer(conf(**{"group.id": "py-sasl-" + uuid.uuid4().hex, "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got = []
    for _ in range(300):
        m = c.poll(0.1)
        if m is None:
            if len(got) >= N:
                break
            continue
        if m.error():
            fail("consume: %s" % m.error())
        got.append((m.key().decode(), m.value().decode()))
    c.close()
    if sorted(got) != sorted(sent):
        fail("read back %d records, %d differ" % (len(got), len(set(got) ^ set(sent))))
    print("ok", MECH)


def refused():
    seen = []
    a = AdminClient(conf(error_cb=lambda e: seen.append(e)))

    def auth_errors():
        return [e for e in seen if e.code() == KafkaError._AUTHENTICATION]

    # The refusal arrives in milliseconds; wait for it (at most 10 s)
    # rather than for a metadata timeout.
    for _ in range(100):
        a.poll(0.1)  # serves error_cb
        if auth_errors():
            break
    try:
        a.list_topics(timeout=0.5)
        fail("list_topics succeeded with bad credentials")
    except KafkaException:
        pass
    auth = auth_errors()
    if not auth:
        fail("no authentication error reported, only %s" % seen)
    print("refused", MECH, auth[0].str())


if EXPECT == "ok":
    ok()
elif EXPECT == "refused":
    refused()
else:
    fail("want ok or refused, got " + EXPECT)
print("PASS")
