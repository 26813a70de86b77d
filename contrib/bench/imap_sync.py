#!/usr/bin/env python3
"""Benchmark: inbox-imap syncing a Maildir of N messages from scratch.

Usage: python3 contrib/bench/imap_sync.py [N]   (default 10000)
env: BUILD (a release build dir; contrib/bench/imap.sh makes one)

A private redis-server, the router, a dovecot on a free port whose Maildir
is filled with N generated messages (plain, Cyrillic base64, HTML only,
multipart with a small attachment, quoted replies), then inbox-imap with
initial_sync = all. It reports messages per second to inbox:in (the
connector alone) and to the store (message.created), and the connector's
peak memory (VmHWM).
"""

import base64
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "harness"))
os.environ.setdefault("INBOXD_SRC", SRC)

from inboxd_harness import Inboxd  # noqa: E402
from mail_harness import Dovecot  # noqa: E402


def message(i):
    kind = i % 5
    hdr = ("From: Customer %d <c%d@example.org>\r\nTo: support@example.com\r\n"
           "Date: Mon, 30 Nov 2026 10:%02d:%02d +0000\r\n"
           "Message-ID: <bench.%d@example.org>\r\nMIME-Version: 1.0\r\n"
           % (i, i % 997, (i // 60) % 60, i % 60, i))
    if kind == 0:
        return hdr + ("Subject: order %d\r\nContent-Type: text/plain; "
                      "charset=us-ascii\r\n\r\nWhere is my order %d?\r\n"
                      "Thanks\r\n" % (i, i))
    if kind == 1:
        body = base64.encodebytes(("Здравствуйте! Заказ %d не пришёл. " % i
                                   * 8).encode()).decode()
        return hdr + ("Subject: =?UTF-8?B?%s?=\r\nContent-Type: text/plain;"
                      " charset=utf-8\r\nContent-Transfer-Encoding: base64"
                      "\r\n\r\n%s" % (base64.b64encode(
                          ("Заказ %d" % i).encode()).decode(), body))
    if kind == 2:
        return hdr + ("Subject: html %d\r\nContent-Type: text/html; "
                      "charset=utf-8\r\n\r\n<html><body><p>Hello <b>team"
                      "</b>,</p><p>invoice %d&nbsp;is wrong</p></body>"
                      "</html>\r\n" % (i, i))
    if kind == 3:
        att = base64.encodebytes(os.urandom(3000)).decode()
        return hdr + ("Subject: attachment %d\r\nContent-Type: multipart/"
                      "mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\nContent-Type:"
                      " text/plain; charset=utf-8\r\n\r\nSee the file.\r\n"
                      "--b%d\r\nContent-Type: application/pdf; name=\"f.pdf\""
                      "\r\nContent-Transfer-Encoding: base64\r\n\r\n%s--b%d--"
                      "\r\n" % (i, i, i, i, att, i))
    return hdr + ("Subject: Re: order %d\r\nIn-Reply-To: <bench.%d@example."
                  "org>\r\nReferences: <bench.%d@example.org>\r\nContent-Type:"
                  " text/plain; charset=utf-8\r\n\r\nStill nothing.\r\n\r\n"
                  "On Mon, 30 Nov 2026 you wrote:\r\n> Where is my order?\r\n"
                  % (i, i - 4, i - 4))


def xlen(w, key):
    return int(w.redis("XLEN", key))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    build = os.environ.get("BUILD", os.path.join(SRC, "build-bench"))
    os.environ["INBOXD_BUILD"] = build
    w = Inboxd("bench-imap", conf_extra={"router": {"batch": 1000}},
               start=False)
    try:
        dc = Dovecot(w)
        # the Maildir, filled directly (dovecot indexes it on first login)
        md = dc.maildir()
        for d in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(md, d), exist_ok=True)
        t0 = time.time()
        total = 0
        for i in range(n):
            data = message(i).encode()
            total += len(data)
            with open(os.path.join(md, "new", "%d.bench%d" % (
                    1796000000 + i, i)), "wb") as f:
                f.write(data)
        subprocess.run(["chown", "-R", "nobody:nogroup",
                        os.path.join(dc.dir, "home")], check=True)
        print("maildir: %d messages, %.1f MB, written in %.1f s"
              % (n, total / 1e6, time.time() - t0))
        c = dc.connector_conf(initial_sync="all")
        w.conf_extra["connector mail1"] = c
        w.conf_extra["store"] = {"blob_path": os.path.join(w.tmp, "blobs")}
        w.write_config()
        w.start_redis()
        w.start("router")
        t0 = time.time()
        w.start("imap")
        pid = w.procs["imap"].pid
        peak = 0
        first = None
        while True:
            k = xlen(w, "inbox:in")
            if first is None and k > 0:
                first = time.time()
            try:
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
            except OSError:
                pass
            if k >= n:
                break
            if time.time() - t0 > 900:
                print("timeout: %d of %d" % (k, n))
                break
            time.sleep(0.05)
        t_in = time.time() - t0
        while True:
            pend = w.redis("XPENDING", "inbox:in", "router")
            top = w.redis("XINFO", "GROUPS", "inbox:in")
            g = dict(zip(top[0][0::2], top[0][1::2]))
            if int(pend[0]) == 0 and int(g.get("entries-read") or 0) >= n:
                break
            time.sleep(0.05)
        t_store = time.time() - t0
        dead = xlen(w, "inbox:dead")
        print("inbox-imap: %d messages to inbox:in in %.2f s: %.0f msgs/s "
              "(from start, incl. login and dovecot's first index)"
              % (n, t_in, n / t_in))
        if first:
            print("            %.0f msgs/s from the first XADD"
                  % (n / (time.time() - first)))
        print("router:     all stored in %.2f s: %.0f msgs/s end to end"
              % (t_store, n / t_store))
        print("peak memory of inbox-imap (VmHWM): %.1f MB" % (peak / 1024))
        print("dead letters: %d" % dead)
    finally:
        w.failed = False
        w.cleanup()
        shutil.rmtree(w.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
