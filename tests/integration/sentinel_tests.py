#!/usr/bin/env python3
"""Redis Sentinel: one master, one replica and three redis-sentinel
processes on loopback ports; the master is killed with SIGKILL while
webhook messages stream in, and the sentinels promote the replica.

Usage: sentinel_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error.
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    WsClosed, check, check_eq, envelope, log, run_test, wait_for)

PW = "correct horse battery staple"
TS0 = 1790000000000


class Poster:
    """Threads that POST messages one after another, each retried like a
    platform retries (on 503 or a refused connection) until it gets a 2xx.
    Every attempt is recorded: (ext_id, start, end, status)."""

    def __init__(self, w, prefix, threads=2):
        self.w = w
        self.prefix = prefix
        self.attempts = []
        self.acked = []          # ext ids answered 2xx, in order
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.failed = None
        self.threads = [threading.Thread(target=self._run, args=(t,),
                                         daemon=True)
                        for t in range(threads)]
        self.n = 0

    def _post_until_2xx(self, ext, thread, i):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                st, _ = self.w.post("api1", envelope(
                    ext, thread, text="text of " + ext, ts=TS0 + i),
                    timeout=30)
            except OSError:
                st = 0
            with self.lock:
                self.attempts.append((ext, t0, time.monotonic(), st))
            if 200 <= st < 300:
                with self.lock:
                    self.acked.append(ext)
                return
            if st not in (0, 503):
                raise AssertionError("%s answered %s" % (ext, st))
            time.sleep(0.05)
        raise AssertionError("%s got no 2xx within 90s" % ext)

    def _run(self, t):
        i = 0
        try:
            while not self.stop.is_set():
                self._post_until_2xx("%s-%d-%d" % (self.prefix, t, i),
                                     "%s-t%d" % (self.prefix, t), i)
                i += 1
        except AssertionError as e:
            self.failed = str(e)

    def start(self):
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(120)
        check(self.failed is None, "poster: %s" % self.failed)

    def count(self):
        with self.lock:
            return len(self.acked)

    def statuses(self, since, until=None):
        with self.lock:
            return [a[3] for a in self.attempts if a[1] >= since and
                    (until is None or a[2] <= until)]


def agent_ws(w):
    w.add_agent("alice", PW)
    token = w.token("alice", PW)
    ws = w.ws_connect(token)
    ws.call("ping")
    return ws, token


def stored_ext_ids(ws, threads):
    """Every stored message's external id, across the threads' dialogs."""
    out = []
    feed = ws.call("feed", limit=50)["conversations"]
    for c in feed:
        if c["thread"] in threads:
            d = ws.call("conversation.get", id=c["id"])
            out.extend(m.get("external_id") for m in d["messages"])
    return out


def check_stored_once(w, ws, token, poster, threads, timeout=60):
    """Every message answered 2xx is stored exactly once (the router may
    still be catching up: wait for the count)."""
    acked = set(poster.acked)
    got = []

    def all_there():
        got[:] = stored_ext_ids(ws, threads)
        return acked <= set(got)
    try:
        wait_for(all_there, timeout, "every acknowledged message in the "
                 "store")
    except WsClosed:
        ws = w.ws_connect(token)
        wait_for(all_there, timeout, "every acknowledged message in the "
                 "store")
    dupes = sorted({e for e in got if got.count(e) > 1})
    check_eq(dupes, [], "messages stored twice")
    log("%d messages acknowledged, %d stored" % (len(acked), len(got)))
    return ws


def see_new_message(w, ws, token, ext, thread):
    """A message posted now reaches the websocket (reconnecting once if the
    gateway closed it during the switch)."""
    w.post_ok("api1", envelope(ext, thread, text="after the failover",
                               ts=TS0 + 10 ** 6))
    try:
        ws.wait_event("message.created", lambda e: e["data"]["message"][
            "external_id"] == ext, timeout=20)
    except WsClosed as e:
        log("NOTE: the gateway closed the socket during the failover "
            "(%s); reconnecting" % e)
        ws = w.ws_connect(token)
        ws.call("ping")
        w.post_ok("api1", envelope(ext + "-b", thread, text="after",
                                   ts=TS0 + 10 ** 6 + 1))
        ws.wait_event("message.created", lambda e: e["data"]["message"][
            "external_id"] == ext + "-b", timeout=20)
    return ws


def start_world(w, min_replicas):
    w.start_redis()
    w.start_sentinels(down_after_ms=1000, failover_timeout_ms=3000,
                      min_replicas=min_replicas)
    w.start("router")
    w.start("webhooks")
    w.start("gateway")
    for name in ("router", "webhooks", "gateway"):
        wait_for(lambda: b"from sentinel" in open(w.procs[name].logpath,
                                                  "rb").read(), 10,
                 "%s to log the master the sentinels named" % name)


def test_acknowledged_messages_survive_sentinel_failover(w):
    start_world(w, min_replicas=1)
    ws, token = agent_ws(w)
    poster = Poster(w, "a")
    poster.start()
    wait_for(lambda: poster.count() >= 30, 30, "30 messages acknowledged "
             "before the failover")

    old = w.redis_port
    log("SIGKILL the master (port %d)" % old)
    t_kill = time.monotonic()
    w.stop_redis(sig=signal.SIGKILL)
    new = w.wait_failover(old)
    t_new = time.monotonic()
    log("the sentinels promoted %d in %.1fs" % (new, t_new - t_kill))
    # The new master has no replica yet: with min_replicas = 1 nothing can
    # be acknowledged until the old master comes back as its replica.
    wait_for(lambda: 503 in poster.statuses(t_new), 20,
             "a 503 after the promotion (no replica yet)")
    n_promoted = poster.count()
    time.sleep(1.0)
    t_back = time.monotonic()
    w.start_redis()           # the sentinels make it a replica of `new`
    wait_for(lambda: "master_link_status:up" in w.redis_at(
        old, "INFO", "replication"), 30, "the old master to replicate the "
        "new one")
    wait_for(lambda: poster.count() >= n_promoted + 30, 60,
             "30 more messages acknowledged after the switch")
    poster.finish()
    first_ok = min(a[2] for a in poster.attempts
                   if a[1] >= t_back and 200 <= a[3] < 300)
    log("%d answers 503 in all; acknowledging again %.1fs after the old "
        "master came back" % (poster.statuses(0).count(503),
                              first_ok - t_back))

    during = poster.statuses(t_kill + 0.2, t_back)
    check(503 in during, "no 503 while the master was down", during)
    check(not [s for s in during if 200 <= s < 300],
          "a message was acknowledged while no replica could have it",
          during)
    ws = check_stored_once(w, ws, token, poster, ("a-t0", "a-t1"))
    ws = see_new_message(w, ws, token, "after-1", "a-t0")
    new_in = w.redis_at(new, "XLEN", "inbox:in")
    check(new_in >= len(poster.acked), "inbox:in on the new master has %d "
          "entries for %d acknowledged messages" % (new_in,
                                                    len(poster.acked)))
    for name in ("router", "webhooks", "gateway"):
        check(("127.0.0.1:%d (from sentinel" % new).encode() in
              open(w.procs[name].logpath, "rb").read(),
              "%s did not log the new master" % name)
    w.assert_running()


def test_min_replicas_0_keeps_what_was_replicated(w):
    start_world(w, min_replicas=0)
    ws, token = agent_ws(w)
    poster = Poster(w, "b", threads=1)
    poster.start()
    wait_for(lambda: poster.count() >= 20, 30, "20 messages acknowledged")
    poster.stop.set()
    poster.finish()
    # Only what reached the replica is guaranteed: wait until it has every
    # write (the router's too) before the kill.
    ws.wait_event("message.created", lambda e: e["data"]["message"][
        "external_id"] == poster.acked[-1], timeout=20)

    def caught_up():
        m = w.redis_at(w.redis_port, "INFO", "replication")
        r = w.redis_at(w.replica_port, "INFO", "replication")
        mo = [ln for ln in m.splitlines()
              if ln.startswith("master_repl_offset:")]
        ro = [ln for ln in r.splitlines()
              if ln.startswith("slave_repl_offset:")]
        return mo and ro and mo[0].split(":")[1] == ro[0].split(":")[1]
    wait_for(caught_up, 20, "the replica to catch up")

    old = w.redis_port
    w.stop_redis(sig=signal.SIGKILL)
    poster2 = Poster(w, "c", threads=1)
    poster2.start()
    new = w.wait_failover(old)
    log("the sentinels promoted %d" % new)
    # min_replicas = 0: the new master acknowledges alone (no replica).
    wait_for(lambda: poster2.count() >= 10, 30,
             "10 messages acknowledged by the lone new master")
    poster2.finish()
    poster.acked += poster2.acked
    ws = check_stored_once(w, ws, token, poster, ("b-t0", "c-t0"))
    see_new_message(w, ws, token, "after-2", "c-t0")
    w.assert_running()


TESTS = {
    "acknowledged_messages_survive_sentinel_failover":
        test_acknowledged_messages_survive_sentinel_failover,
    "min_replicas_0_keeps_what_was_replicated":
        test_min_replicas_0_keeps_what_was_replicated,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        if len(sys.argv) == 2 and sys.argv[1] == "--list":
            print("\n".join(TESTS))
            sys.exit(0)
        print("usage: %s TEST_ID\n  %s" % (sys.argv[0], "\n  ".join(TESTS)))
        sys.exit(99)
    run_test(sys.argv[1], TESTS[sys.argv[1]], start=False)


if __name__ == "__main__":
    main()
