#!/usr/bin/env python3
"""Benchmark: how fast a router catches up with a backlog.

Usage: python3 contrib/bench/catchup.py [N]   (default 100000)
env: BUILD (a release build dir; catchup.sh makes one), CONVS (1000),
     BATCH (router.batch, 1000)

A private redis-server (AOF everysec) and the router; the router is
stopped, N envelopes over CONVS dialogs are appended to inbox:in
(pipelined), and the router is started again: the figure is the time from
its start until nothing is pending and every entry was read, and the
rate that makes.
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "harness"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
os.environ.setdefault("INBOXD_SRC", SRC)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    convs = int(os.environ.get("CONVS", "1000"))
    batch = os.environ.get("BATCH", "1000")
    os.environ["INBOXD_BUILD"] = os.environ.get(
        "BUILD", os.path.join(SRC, "build-bench"))
    from inboxd_harness import Inboxd
    from inbox_tests import pipeline
    w = Inboxd("bench-catchup", conf_extra={"router": {"batch": batch}},
               start=False)
    try:
        w.start_redis()
        w.start("router")        # creates the store and the groups
        w.stop("router")
        cmds = []
        t0 = 1790000000000
        for i in range(n):
            env = {"v": 1, "connector": "api1", "channel": "api",
                   "kind": "message", "external_id": "m-%d" % i,
                   "ts": t0 + i, "thread": "t-%d" % (i % convs),
                   "contact": {"external_id": "c-%d" % (i % convs),
                               "name": "Customer %d" % (i % convs)},
                   "text": "message %d about the order, with some text "
                           "to make it the size of a real one" % i}
            cmds.append(("XADD", "inbox:in", "*", "env", json.dumps(env)))
        ta = time.time()
        pipeline(w, cmds, chunk=2000)
        print("backlog: %d envelopes over %d dialogs appended in %.1f s"
              % (n, convs, time.time() - ta))
        start = time.time()
        w.start("router")
        prof = None
        if os.environ.get("PROFILE"):
            import subprocess
            prof = subprocess.Popen(
                ["perf", "record", "-e", "cpu-clock", "-F", "2000", "-g",
                 "-o", os.environ["PROFILE"], "-p",
                 str(w.procs["router"].pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            g = w.redis("XINFO", "GROUPS", "inbox:in")
            info = dict(zip(g[0][0::2], g[0][1::2]))
            read = int(info.get("entries-read") or 0)
            pending = int(info.get("pending") or 0)
            if read >= n and pending == 0:
                break
            if time.time() - start > 600:
                print("timeout: %d read, %d pending" % (read, pending))
                break
            time.sleep(0.01)
        took = time.time() - start
        if prof is not None:
            prof.send_signal(2)
            prof.wait()
        print("router: caught up with %d entries in %.2f s from its start"
              " (%.0f entries/s), target under 5 s" % (n, took, n / took))
        with open(w.procs["router"].logpath) as f:
            print("router log lines: %d" % len(f.read().splitlines()))
    finally:
        w.failed = False
        w.cleanup()


if __name__ == "__main__":
    main()
