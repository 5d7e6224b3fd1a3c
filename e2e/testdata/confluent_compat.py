"""librdkafka (python3-confluent-kafka) against a Sluice agent.

Usage: confluent_compat.py BOOTSTRAP [CHECK...]

CHECKs (all of them when none is given):

  codecs   for every compression codec: produce records with keys and
           headers (idempotent, acks=all), consume them back and compare
           exactly; report how many times librdkafka said it would not
           compress a batch ("ok CODEC N not-compressing=K"; the Go test
           checks K and the codec of the stored batches).
  resume   a consumer group reads a topic, commits, and a second consumer
           of the same group resumes after the committed offsets.
  members  two consumers of one group share a 4-partition topic (the
           assignment is split between them); one closes, its committed
           offsets are exactly what it consumed, the other takes its
           partitions over; a new member joins and both resume from the
           committed offsets with nothing skipped or repeated.
  admin    AdminClient: create_topics (then again: TOPIC_ALREADY_EXISTS),
           list_topics metadata, describe_configs, delete_topics (gone from
           list_topics; again: UNKNOWN_TOPIC_OR_PART).
  broker   AdminClient.describe_configs of the BROKER resource of each
           broker: broker.id is its id (STATIC_BROKER_CONFIG),
           message.max.bytes a DEFAULT_CONFIG, num.partitions what
           --default-partitions says (the Go test starts the playground
           with 4).
  txn      transactions (issue 15): a transactional producer commits,
           aborts and commits again; a read_committed consumer sees only
           the committed records, read_uncommitted all of them; a
           consume-transform-produce transaction with
           send_offsets_to_transaction commits the group's offsets with
           its output, and an aborted one leaves both untouched; a
           second producer with the same transactional id fences the
           first, whose commit then fails.
  txnlso   transactions (issue 15): with a transaction open,
           get_watermark_offsets of a read_committed consumer answers
           the last stable offset (the transaction's first offset) and
           of a read_uncommitted one the high watermark; after the
           commit both are the high watermark. A transaction with
           transaction.timeout.ms=2000 left open is aborted by the
           coordinator (the read_committed end offset passes its abort
           marker) and its late commit fails.

Prints "ok ..." per check and "PASS" at the end; exits non-zero with a
message on the first mismatch.
"""
import logging
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

BOOT = sys.argv[1]
N = 500


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


class Notices(logging.Handler):
    """Collects librdkafka's log lines that contain a given text."""

    def __init__(self, text):
        super().__init__(logging.DEBUG)
        self.text = text
        self.lines = []

    def emit(self, record):
        msg = record.getMessage()
        if self.text in msg:
            self.lines.append(msg)


def produce(topic, codec, start, n):
    """Produces records start..start+n-1 and returns how many batches
    librdkafka said it would not compress with codec."""
    errors = []
    notices = Notices("Broker does not support compression type %s: not compressing batch" % codec)
    log = logging.getLogger("librdkafka-" + topic + "-" + codec)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(notices)
    # debug=msg: librdkafka logs its per-batch codec decision (at NOTICE
    # once a day, at debug otherwise); the logger gets it, not stderr.
    p = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "acks": "all",
                  "compression.type": codec, "linger.ms": 5, "debug": "msg", "logger": log})

    def cb(err, _msg):
        if err is not None:
            errors.append(err)

    for i in range(start, start + n):
        p.produce(topic, key=b"k%d" % i, value=(b"v%d-" % i) * (i % 40 + 1),
                  headers=[("i", b"%d" % i)], on_delivery=cb)
        p.poll(0)
    left = p.flush(30)
    log.removeHandler(notices)
    if left or errors:
        fail("%s: %d unflushed, errors %s" % (codec, left, errors[:3]))
    return len(notices.lines)


def consume(conf, topic, want, timeout=30):
    c = Consumer(conf)
    c.subscribe([topic])
    got = []
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
        not_compressing = produce(topic, codec, 0, N)
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
        print("ok %s %d not-compressing=%d" % (codec, len(got), not_compressing))


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


class Member:
    """One consumer of a group; the caller's loop polls every member in
    turn, so all of them serve their rebalances."""

    def __init__(self, name, conf, topic):
        self.name = name
        self.assigned = set()
        self.got = []  # (partition, offset, record index)
        self.c = Consumer(conf)
        self.c.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke)

    def _assign(self, _c, parts):
        self.assigned = {tp.partition for tp in parts}

    def _revoke(self, _c, parts):
        self.assigned -= {tp.partition for tp in parts}

    def poll(self):
        m = self.c.poll(0.05)
        if m is None:
            return
        if m.error():
            raise KafkaException(m.error())
        i = int(dict(m.headers())["i"])
        if m.key() != b"k%d" % i or m.value() != (b"v%d-" % i) * (i % 40 + 1):
            fail("%s: record %d at %d@%d differs" % (self.name, i, m.partition(), m.offset()))
        self.got.append((m.partition(), m.offset(), i))

    def indexes(self, lo=0, hi=1 << 62):
        return [i for _p, _o, i in self.got if lo <= i < hi]

    def __repr__(self):
        return "%s(assigned=%s, got=%d)" % (self.name, sorted(self.assigned), len(self.got))


def poll_until(members, cond, what, timeout=30):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            fail("%s: not within %ds: %s" % (what, timeout, members))
        for m in members:
            m.poll()


def split(members, parts):
    """Every member holds partitions, none twice, all of them covered."""
    seen = set()
    for m in members:
        if not m.assigned or seen & m.assigned:
            return False
        seen |= m.assigned
    return seen == parts


def distinct(members):
    return len({i for m in members for i in m.indexes()})


def check_group_members():
    topic = "py-members"
    group = "py-members-" + uuid.uuid4().hex[:8]
    parts = {0, 1, 2, 3}
    admin = AdminClient({"bootstrap.servers": BOOT})
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
    conf = {"bootstrap.servers": BOOT, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": True, "auto.commit.interval.ms": 100,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    a = Member("a", conf, topic)
    b = Member("b", conf, topic)
    poll_until([a, b], lambda: split([a, b], parts), "a and b share the partitions")
    a_parts, b_parts = sorted(a.assigned), sorted(b.assigned)

    # Phase 1: 400 records, no rebalance: each exactly once, both members
    # get some.
    produce(topic, "none", 0, 400)
    poll_until([a, b], lambda: distinct([a, b]) >= 400, "400 records read by a and b")
    if not a.got or not b.got:
        fail("members: one member got nothing: %s %s" % (a, b))
    for m, mine in ((a, a_parts), (b, b_parts)):
        if any(p not in mine for p, _o, _i in m.got):
            fail("members: %s read a partition outside its assignment %s" % (m.name, mine))

    # a closes (a restart's first half): close commits what it consumed,
    # so its committed offsets are exactly one past its last record.
    last = {}
    for p, o, _i in a.got:
        last[p] = max(last.get(p, -1), o)
    a.c.close()
    for tp in b.c.committed([TopicPartition(topic, p) for p in a_parts], timeout=10):
        if tp.offset != last[tp.partition] + 1:
            fail("members: a closed with %d consumed on partition %d but committed %d"
                 % (last[tp.partition] + 1, tp.partition, tp.offset))

    # Phase 2: b takes all partitions over, starting from a's commits.
    poll_until([b], lambda: b.assigned == parts, "b takes over all partitions")
    produce(topic, "none", 400, 200)
    poll_until([b], lambda: distinct([a, b]) >= 600, "600 records read after a left")
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    high = {p: b.c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    if sum(high.values()) != 600:
        fail("members: high watermarks %s, want 600 records in all" % high)
    # b's auto commit catches up with what it read before anyone joins.
    poll_until([b], lambda: all(tp.offset == high[tp.partition] for tp in b.c.committed(tps, timeout=10)),
               "b's committed offsets reach the high watermarks")

    # A new member (a restarted a) joins: the two split the partitions and
    # both resume from the committed offsets.
    c = Member("c", conf, topic)
    poll_until([b, c], lambda: split([b, c], parts), "b and c share the partitions")
    produce(topic, "none", 600, 200)
    poll_until([b, c], lambda: distinct([a, b, c]) >= 800, "800 records read after c joined")
    if not c.indexes(600) or not b.indexes(600):
        fail("members: after c joined, b read %d and c %d of the new records"
             % (len(b.indexes(600)), len(c.indexes(600))))
    if c.indexes(0, 600):
        fail("members: c re-read %d committed records" % len(c.indexes(0, 600)))
    c_parts = sorted(c.assigned)
    b.c.close()
    c.c.close()

    # The union, per partition: offsets dense from 0 to the high
    # watermark, each delivered once (at-least-once would allow
    # re-delivery only past a commit, and both hand-overs happened with
    # everything committed), and produce order kept.
    count = {}
    byp = {}
    for m in (a, b, c):
        for p, o, i in m.got:
            count[i] = count.get(i, 0) + 1
            byp.setdefault(p, []).append((o, i))
    missing = [i for i in range(800) if i not in count]
    dups = sorted(i for i, n in count.items() if n > 1)
    if missing or dups or len(count) != 800:
        fail("members: missing %s, delivered twice %s" % (missing[:10], dups[:10]))
    for p, recs in byp.items():
        recs.sort()
        if [o for o, _i in recs] != list(range(len(recs))):
            fail("members: partition %d offsets not dense from 0" % p)
        if any(recs[j][1] <= recs[j - 1][1] for j in range(1, len(recs))):
            fail("members: partition %d out of produce order" % p)
    print("ok group members: a %s got %d, b %s got %d, c %s got %d (new records: b %d, c %d); 0 re-delivered"
          % (a_parts, len(a.got), b_parts, len(b.got), c_parts, len(c.got),
             len(b.indexes(600)), len(c.indexes(600))))


def admin_error(fut):
    try:
        fut.result(30)
    except KafkaException as e:
        return e.args[0].code()
    return None


def check_admin():
    admin = AdminClient({"bootstrap.servers": BOOT})
    name = "py-admin-" + uuid.uuid4().hex[:8]
    new = NewTopic(name, num_partitions=3, replication_factor=1, config={"retention.ms": "3600000"})
    if admin.create_topics([new], operation_timeout=10)[name].result(30) is not None:
        fail("admin: create_topics result not None")
    code = admin_error(admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name])
    if code != KafkaError.TOPIC_ALREADY_EXISTS:
        fail("admin: second create: %s, want TOPIC_ALREADY_EXISTS" % code)

    md = admin.list_topics(timeout=10)
    t = md.topics.get(name)
    if t is None or t.error is not None:
        fail("admin: %s not in list_topics: %s" % (name, t and t.error))
    if sorted(t.partitions) != [0, 1, 2]:
        fail("admin: partitions %s, want [0, 1, 2]" % sorted(t.partitions))
    for p in t.partitions.values():
        if p.error is not None or p.leader not in md.brokers or p.replicas != [p.leader]:
            fail("admin: partition %d: leader %d replicas %s error %s (brokers %s)"
                 % (p.id, p.leader, p.replicas, p.error, list(md.brokers)))

    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    cfg = admin.describe_configs([res])[res].result(30)
    ret = cfg.get("retention.ms")
    if ret is None or ret.value != "3600000" or ret.source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value:
        fail("admin: retention.ms described as %r" % ret)
    print("ok admin describe: %d partitions, %d configs, retention.ms=%s" % (len(t.partitions), len(cfg), ret.value))

    if admin.delete_topics([name], operation_timeout=10)[name].result(30) is not None:
        fail("admin: delete_topics result not None")
    deadline = time.time() + 10
    while name in admin.list_topics(timeout=10).topics:
        if time.time() > deadline:
            fail("admin: %s still in list_topics 10s after delete" % name)
        time.sleep(0.1)
    code = admin_error(admin.delete_topics([name])[name])
    if code != KafkaError.UNKNOWN_TOPIC_OR_PART:
        fail("admin: second delete: %s, want UNKNOWN_TOPIC_OR_PART" % code)
    print("ok admin create/describe/delete")


def check_broker_configs():
    admin = AdminClient({"bootstrap.servers": BOOT})
    md = admin.list_topics(timeout=10)
    if not md.brokers:
        fail("broker: no brokers in list_topics")
    for bid in md.brokers:
        res = ConfigResource(ConfigResource.Type.BROKER, str(bid))
        cfg = admin.describe_configs([res])[res].result(30)
        want = {"broker.id": (str(bid), ConfigSource.STATIC_BROKER_CONFIG),
                "message.max.bytes": ("1048588", ConfigSource.DEFAULT_CONFIG),
                "num.partitions": ("4", ConfigSource.STATIC_BROKER_CONFIG)}
        for name, (value, source) in want.items():
            c = cfg.get(name)
            if c is None or c.value != value or c.source != source.value:
                fail("broker %d: %s described as %r, want %s from %s" % (bid, name, c, value, source))
        print("ok broker %d: %d configs, broker.id=%s num.partitions=%s"
              % (bid, len(cfg), cfg["broker.id"].value, cfg["num.partitions"].value))


def read_all(topic, timeout=20):
    """Reads topic from the start to its high watermarks with a new
    consumer; returns (key, value, offset, partition) tuples in order."""
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "py-read-" + uuid.uuid4().hex[:8],
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10).topics[topic]
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in md.partitions}
    c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
    got, pos = [], {p: -1 for p in md.partitions}
    deadline = time.time() + timeout
    while any(pos[p] < ends[p] - 1 for p in pos) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        if m.offset() <= pos[m.partition()]:
            fail("compacted: partition %d offset %d after %d" % (m.partition(), m.offset(), pos[m.partition()]))
        pos[m.partition()] = m.offset()
        got.append((m.key(), m.value(), m.offset(), m.partition()))
    c.close()
    return got


def check_compacted():
    """A compacted topic (cleanup.policy=compact) made by AdminClient:
    keyless records are refused with INVALID_RECORD; after the jobs agent
    cleaned it, a consumer from the start sees each key's latest value
    once, tombstones included, offsets increasing but not dense."""
    admin = AdminClient({"bootstrap.servers": BOOT})
    name = "py-compact-" + uuid.uuid4().hex[:8]
    new = NewTopic(name, num_partitions=2, replication_factor=1,
                   config={"cleanup.policy": "compact", "max.compaction.lag.ms": "1"})
    if admin.create_topics([new], operation_timeout=10)[name].result(30) is not None:
        fail("compacted: create_topics result not None")
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    pol = admin.describe_configs([res])[res].result(30).get("cleanup.policy")
    if pol is None or pol.value != "compact":
        fail("compacted: cleanup.policy described as %r" % pol)

    errors = []
    p = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    p.produce(name, value=b"no key", on_delivery=lambda err, _m: errors.append(err))
    p.flush(30)
    if len(errors) != 1 or errors[0] is None or errors[0].code() != KafkaError.INVALID_RECORD:
        fail("compacted: keyless record: %s, want INVALID_RECORD" % errors)
    p = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    keys, rounds = 40, 4
    errors = []
    for r in range(rounds):
        for k in range(keys):
            value = None if (r == rounds - 1 and k < 8) else b"v%d-k%02d" % (r, k)
            p.produce(name, key=b"k%02d" % k, value=value, on_delivery=lambda err, _m: err and errors.append(err))
        p.flush(30)
    if errors:
        fail("compacted: produce errors %s" % errors[:3])
    want = {b"k%02d" % k: (None if k < 8 else b"v%d-k%02d" % (rounds - 1, k)) for k in range(keys)}
    deadline = time.time() + 60
    while True:
        got = read_all(name)
        latest = {}
        for key, value, _off, _p in got:
            latest[key] = value
        if len(got) == keys and latest == want:
            break
        if time.time() > deadline:
            fail("compacted: after 60 s %d records (want %d, one per key), latest matches: %s"
                 % (len(got), keys, latest == want))
        time.sleep(1)
    first = min(off for _k, _v, off, _p in got)
    if first == 0:
        fail("compacted: a record at offset 0 survived, though every key was written again after it")
    print("ok compacted: %d keys, %d tombstones, first offset read %d" % (keys, 8, first))

def check_txn():
    """Transactions (issue 15); see the top of this file."""
    admin = AdminClient({"bootstrap.servers": BOOT})
    src, out = "py-txn-" + uuid.uuid4().hex[:8], "py-txn-out-" + uuid.uuid4().hex[:8]
    for name in (src, out):
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)], operation_timeout=10)[name].result(30)
    p = Producer({"bootstrap.servers": BOOT, "transactional.id": "py-txn-" + uuid.uuid4().hex[:8]})
    p.init_transactions(30)
    for prefix, n, commit in (("c1", 10, True), ("ab", 7, False), ("c2", 5, True)):
        p.begin_transaction()
        for i in range(n):
            p.produce(src, key=b"%d" % i, value=b"%s-%d" % (prefix.encode(), i))
        if commit:
            p.commit_transaction(30)
        else:
            p.flush(30)
            p.abort_transaction(30)

    def values(isolation, want):
        c, got = consume({"bootstrap.servers": BOOT, "group.id": "py-txn-read-" + uuid.uuid4().hex[:8],
                          "auto.offset.reset": "earliest", "enable.auto.commit": False,
                          "isolation.level": isolation}, src, want)
        c.close()
        return [m.value() for m in got]

    committed = values("read_committed", 15)
    want = [b"c1-%d" % i for i in range(10)] + [b"c2-%d" % i for i in range(5)]
    if committed != want:
        fail("txn: read_committed got %s, want %s" % (committed, want))
    everything = values("read_uncommitted", 22)
    if len(everything) != 22 or sum(v.startswith(b"ab-") for v in everything) != 7:
        fail("txn: read_uncommitted got %s, want all 22 records" % everything)

    # Consume-transform-produce: an aborted attempt, then a committed one.
    group = "py-txn-eos-" + uuid.uuid4().hex[:8]
    c, got = consume({"bootstrap.servers": BOOT, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "isolation.level": "read_committed"}, src, 15)
    if len(got) != 15:
        fail("txn: the transform consumer read %d of 15 records" % len(got))
    positions = c.position(c.assignment())
    for commit in (False, True):
        p.begin_transaction()
        for m in got:
            p.produce(out, key=m.key(), value=b"t-" + m.value())
        p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 30)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
            cm = c.committed([TopicPartition(src, 0)], timeout=10)
            if cm[0].offset >= 0:
                fail("txn: an aborted transaction committed offset %d" % cm[0].offset)
    cm = c.committed([TopicPartition(src, 0)], timeout=10)
    if cm[0].offset != positions[0].offset or positions[0].offset < 24:
        fail("txn: committed offset %d, sent %d (want past the last record, 23)" % (cm[0].offset, positions[0].offset))
    c.close()
    c2, got2 = consume({"bootstrap.servers": BOOT, "group.id": "py-txn-out-" + uuid.uuid4().hex[:8],
                        "auto.offset.reset": "earliest", "isolation.level": "read_committed"}, out, 15)
    c2.close()
    if [m.value() for m in got2] != [b"t-" + v for v in want]:
        fail("txn: output read_committed %s" % [m.value() for m in got2])
    # Fencing: a second producer with the same transactional id fences
    # the first, whose open transaction is aborted; its commit fails.
    tid = "py-txn-fence-" + uuid.uuid4().hex[:8]
    zombie = Producer({"bootstrap.servers": BOOT, "transactional.id": tid})
    zombie.init_transactions(30)
    zombie.begin_transaction()
    zombie.produce(out, value=b"zombie")
    zombie.flush(30)
    fresh = Producer({"bootstrap.servers": BOOT, "transactional.id": tid})
    fresh.init_transactions(30)
    try:
        zombie.commit_transaction(30)
        fail("txn: the fenced producer committed")
    except KafkaException as e:
        err = e.args[0]
        if not (err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)):
            fail("txn: the fenced producer's commit: %s, want a fatal fencing error" % err)
    # The new instance commits an end record after the zombie's: reading
    # up to it with read_committed passes where the zombie's record is.
    fresh.begin_transaction()
    fresh.produce(out, value=b"end")
    fresh.commit_transaction(30)
    c3, got3 = consume({"bootstrap.servers": BOOT, "group.id": "py-txn-out-" + uuid.uuid4().hex[:8],
                        "auto.offset.reset": "earliest", "isolation.level": "read_committed"}, out, 16)
    c3.close()
    vals = [m.value() for m in got3]
    if len(vals) != 16 or vals[-1] != b"end" or b"zombie" in vals:
        fail("txn: after fencing, read_committed got %s; want the 15 outputs, then end, no zombie" % vals)
    print("ok txn: committed %d, aborted 7 hidden, group offset %d committed with the output, zombie fenced (%s)"
          % (len(committed), cm[0].offset, err.name()))


def check_txn_lso():
    """Transactions (issue 15): the LSO and the timeout abort; see the top of this file."""
    admin = AdminClient({"bootstrap.servers": BOOT})
    topic = "py-lso-" + uuid.uuid4().hex[:8]
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)], operation_timeout=10)[topic].result(30)
    tp = TopicPartition(topic, 0)

    def ends():
        out = []
        for isolation in ("read_committed", "read_uncommitted"):
            c = Consumer({"bootstrap.servers": BOOT, "group.id": "py-lso-" + uuid.uuid4().hex[:8],
                          "isolation.level": isolation})
            out.append(c.get_watermark_offsets(tp, timeout=10, cached=False)[1])
            c.close()
        return tuple(out)

    p = Producer({"bootstrap.servers": BOOT, "transactional.id": "py-lso-" + uuid.uuid4().hex[:8]})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=b"c-%d" % i)
    p.commit_transaction(30)  # offsets 0-2, marker 3
    p.begin_transaction()
    for i in range(2):
        p.produce(topic, value=b"open-%d" % i)
    p.flush(30)  # offsets 4-5, open
    if ends() != (4, 6):
        fail("txnlso: with a transaction open at 4, read_committed/read_uncommitted end offsets %s, want (4, 6)" % (ends(),))
    p.commit_transaction(30)  # marker 6
    if ends() != (7, 7):
        fail("txnlso: after the commit, end offsets %s, want (7, 7)" % (ends(),))

    slow = Producer({"bootstrap.servers": BOOT, "transactional.id": "py-slow-" + uuid.uuid4().hex[:8],
                     "transaction.timeout.ms": 2000})
    slow.init_transactions(30)
    slow.begin_transaction()
    slow.produce(topic, value=b"late")
    slow.flush(30)  # offset 7, open
    deadline = time.time() + 30
    while ends()[0] != 9:  # the abort marker at 8
        if time.time() > deadline:
            fail("txnlso: the 2 s transaction was not aborted within 30 s: end offsets %s" % (ends(),))
        time.sleep(0.1)
    try:
        slow.commit_transaction(30)
        fail("txnlso: the commit of a timed-out transaction succeeded")
    except KafkaException as e:
        late = e.args[0]
    c, got = consume({"bootstrap.servers": BOOT, "group.id": "py-lso-" + uuid.uuid4().hex[:8],
                      "auto.offset.reset": "earliest", "isolation.level": "read_committed"}, topic, 5)
    c.close()
    vals = [(m.value(), m.offset()) for m in got]
    if vals != [(b"c-0", 0), (b"c-1", 1), (b"c-2", 2), (b"open-0", 4), (b"open-1", 5)]:
        fail("txnlso: read_committed got %s" % vals)
    print("ok txnlso: LSO 4 with a transaction open (high watermark 6), 7 after the commit; "
          "timed-out transaction aborted, late commit refused (%s)" % late.name())


CHECKS = {"compacted": check_compacted, "codecs": check_codecs, "resume": check_group_resume,
          "members": check_group_members, "admin": check_admin,
          "broker": check_broker_configs,
          "txn": check_txn, "txnlso": check_txn_lso}  # transactions (issue 15)
for name in sys.argv[2:] or list(CHECKS):
    if name not in CHECKS:
        fail("unknown check %r (have %s)" % (name, ", ".join(CHECKS)))
    CHECKS[name]()
print("PASS")
