#!/usr/bin/python3
"""librdkafka (confluent-kafka) group members with a slow revoke callback.

Usage: confluent_slow_revoke.py BOOTSTRAP SESSION_MS REVOKE_SECONDS

Two members settle on a 6-partition topic, one of them slow to revoke;
a third joins. The fast members wait in JoinGroup for the slow one: the
coordinator must keep them (issue 11: they were expelled after their
session timeout). Passes when the group settles with 2 partitions each
after exactly one more assignment per member, nobody lost partitions,
and it stays so. Prints PASS on success.
"""
import logging
import re
import sys
import threading
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, session_ms, revoke_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
topic, group = "py-slow-revoke", "py-slow-revoke-g"

admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: the future needs it
admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(30)

lock = threading.Lock()
state = {}
stop = threading.Event()


class Expulsions(logging.Handler):
    """Counts librdkafka's cgrp debug lines that tell the member was
    unknown to the coordinator (expelled), and collects its member ids."""

    def __init__(self, st):
        super().__init__()
        self.st = st

    def emit(self, record):
        msg = record.getMessage()
        with lock:
            if "nknown member" in msg or "UNKNOWN_MEMBER_ID" in msg:
                self.st["unknown"] += 1
            for mid in re.findall(r"my MemberId \"?([A-Za-z0-9._-]+)", msg):
                self.st["ids"].add(mid)


def member(name, revoke_delay):
    st = {"assigned": 0, "assigns": 0, "lost": 0, "errors": [], "unknown": 0, "ids": set()}
    with lock:
        state[name] = st
    log = logging.getLogger("rdkafka." + name)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(Expulsions(st))

    def on_assign(c, parts):
        with lock:
            st["assigned"] = len(parts)
            st["assigns"] += 1

    def on_revoke(c, parts):
        with lock:
            st["assigned"] = 0
        time.sleep(revoke_delay)

    def on_lost(c, parts):
        with lock:
            st["assigned"] = 0
            st["lost"] += 1

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 20000,  # librdkafka's rebalance timeout
        "partition.assignment.strategy": "range",
        "enable.auto.commit": False,
        "error_cb": lambda e: st["errors"].append(str(e)),
        "debug": "cgrp",
        "logger": log,
    })
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    while not stop.is_set():
        m = c.poll(0.1)
        if m is not None and m.error():
            with lock:
                st["errors"].append(str(m.error()))
    c.close()


def start(name, delay):
    t = threading.Thread(target=member, args=(name, delay), daemon=True)
    t.start()
    return t


def snapshot():
    with lock:
        return {n: dict(s, ids=set(s["ids"])) for n, s in state.items()}


def settled(names, each, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = snapshot()
        if all(n in s and s[n]["assigned"] == each for n in names):
            return s
        time.sleep(0.05)
    sys.exit("FAIL: never settled with %d partitions each: %r" % (each, snapshot()))


threads = [start("fast", 0), start("slow", revoke_s)]
before = settled(["fast", "slow"], 3, 30)
began = time.time()
threads.append(start("third", 0))
after = settled(["fast", "slow", "third"], 2, 40)
took = time.time() - began
time.sleep(2 * session_ms / 1000.0 + 1)  # a thrashing group would move on
final = snapshot()
stop.set()
for t in threads:
    t.join(15)
print("before", before)
print("final", final)
print("rebalance took %.1fs" % took)
fails = []
for n in ("fast", "slow"):
    if final[n]["assigns"] != before[n]["assigns"] + 1:
        fails.append("%s was assigned %d times, want one more than %d" % (n, final[n]["assigns"], before[n]["assigns"]))
for n, s in final.items():
    if s["unknown"]:
        fails.append("%s was told %d times that it is an unknown member (expelled)" % (n, s["unknown"]))
    if len(s["ids"]) != 1:
        fails.append("%s had member ids %s, want one" % (n, sorted(s["ids"])))
    if s["lost"]:
        fails.append("%s lost its partitions %d times" % (n, s["lost"]))
    if s["assigned"] != 2:
        fails.append("%s holds %d partitions at the end" % (n, s["assigned"]))
if fails:
    sys.exit("FAIL: " + "; ".join(fails))
print("PASS")
