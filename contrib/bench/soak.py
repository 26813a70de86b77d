#!/usr/bin/env python3
"""Soak test: mixed traffic while processes are SIGKILLed at random.

Usage: python3 contrib/bench/soak.py      (contrib/bench/soak.sh builds first)

For SOAK_SECONDS (default 3600) it runs, against a private world started
with the test harness (tests/harness: redis-server with AOF, appendfsync
always; inbox-router, inbox-webhooks, inbox-gateway; with dovecot installed
also a dovecot and one inbox-imap):

  - webhook POSTs on the api channel (unique external ids over SOAK_THREADS
    dialogs, SOAK_RATE a second in total), each retried until it gets a 2xx
    or SOAK_RETRY_S passes, as a platform retries;
  - an agent (role supervisor) on a websocket sending replies, notes, tags,
    close and reopen, reconnecting when the gateway goes away;
  - IMAP APPENDs of mail with unique Message-IDs (one every SOAK_IMAP_EVERY s);
  - a chaos loop that every SOAK_KILL_MIN..SOAK_KILL_MAX seconds SIGKILLs
    one of router, webhooks, gateway, imap, redis and starts it again, and
    measures how long until the router has consumed everything that was in
    its streams when the process was back.

At the end it waits for the system to settle and checks the store: every
acknowledged message (HTTP 2xx, IMAP APPEND OK) stored exactly once, every
acknowledged reply and note exactly once, nothing stored twice, no process
that died by itself. It prints the figures and exits 0 when all holds, 1
otherwise (the world's directory with every log is then kept and named).

env: BUILD (build dir; INBOXD_BUILD also works), SOAK_SECONDS (3600),
SOAK_RATE (40), SOAK_THREADS (300), SOAK_KILL_MIN (10), SOAK_KILL_MAX (60),
SOAK_IMAP (auto|0|1), SOAK_IMAP_EVERY (1.0), SOAK_RETRY_S (60),
SOAK_SEED (random), SOAK_KEEP (1: keep the directory even on success),
SOAK_SHARDS (1: redis.shards, with one router per shard, each killed on
its own),
SOAK_JSON (a file to write the figures to).
"""

import json
import os
import random
import shutil
import signal
import socket
import sys
import threading
import time
import http.client
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "harness"))
os.environ.setdefault("INBOXD_SRC", SRC)
if "BUILD" in os.environ:
    os.environ["INBOXD_BUILD"] = os.environ["BUILD"]
os.environ.setdefault("INBOXD_BUILD", os.path.join(SRC, "build-soak"))

from inboxd_harness import (Inboxd, TestFailure, HarnessError,  # noqa: E402
                            WsClosed, WsHandshakeRefused, WsClient, log,
                            _tail)

SECONDS = float(os.environ.get("SOAK_SECONDS", "3600"))
RATE = float(os.environ.get("SOAK_RATE", "40"))
THREADS = int(os.environ.get("SOAK_THREADS", "300"))
KILL_MIN = float(os.environ.get("SOAK_KILL_MIN", "10"))
KILL_MAX = float(os.environ.get("SOAK_KILL_MAX", "60"))
IMAP = os.environ.get("SOAK_IMAP", "auto")
IMAP_EVERY = float(os.environ.get("SOAK_IMAP_EVERY", "1.0"))
RETRY_S = float(os.environ.get("SOAK_RETRY_S", "60"))
SHARDS = int(os.environ.get("SOAK_SHARDS", "1"))
SEED = int(os.environ.get("SOAK_SEED", str(int.from_bytes(os.urandom(4),
                                                          "big"))))
POSTERS = 4
PW = "soak-password"


def sid(s):
    """Stream id -> comparable tuple."""
    a, _, b = s.partition("-")
    return (int(a), int(b or 0))


class Soak:
    def __init__(self):
        self.rng = random.Random(SEED)
        self.stop = threading.Event()      # traffic stops
        self.lock = threading.Lock()
        self.seq = 0
        # webhooks
        self.posts = {}          # external_id -> "acked" | "unacked"
        self.attempts = 0
        self.post_errors = {}    # status or exception name -> count
        # agent commands
        self.cmd = {}            # type -> {"ok", "refused", "unknown"}
        self.refusals = {}       # code -> count
        self.acked_texts = {}    # reply/note text -> (kind, conv id)
        self.unknown_texts = {}  # sent, no answer (may or may not be applied)
        self.ws_reconnects = 0
        # imap
        self.mails = {}          # message id -> "acked" | "unacked"
        # chaos
        self.kills = {}          # name -> count
        self.catchup = {}        # name -> [seconds from kill to caught up]
        self.downtime = {}       # name -> [seconds from kill to ready]
        self.crashes = []        # processes that died by themselves
        self.problems = []
        self.w = None
        self.dc = None

    # -- world ---------------------------------------------------------------
    def up(self):
        extra = {"router": {"auto_assign": 0}}
        if SHARDS > 1:
            extra["redis"] = {"shards": SHARDS}
        w = Inboxd("soak", conf_extra=extra, start=False)
        self.w = w
        use_imap = IMAP == "1" or (IMAP == "auto" and shutil.which("dovecot")
                                   and os.access(w.exe["imap"], os.X_OK))
        if use_imap:
            from mail_harness import Dovecot
            self.dc = Dovecot(w)
            w.conf_extra["connector mail1"] = self.dc.connector_conf()
            w.conf_extra["store"] = {"blob_path": os.path.join(w.tmp,
                                                               "blobs")}
            w.write_config()
        if SHARDS > 1:
            w.start_redis()
            for k in range(SHARDS):
                self.start("router%d" % k)
            w.start("webhooks")
            w.start("gateway")
        else:
            w.start_all()
        if self.dc:
            w.start("imap")
        w.add_agent("soak", PW, role="supervisor")
        self.routers = ["router%d" % k for k in range(SHARDS)] \
            if SHARDS > 1 else ["router"]
        self.procs = self.routers + ["webhooks", "gateway", "redis"] + \
            (["imap"] if self.dc else [])

    def keys(self, name):
        """A stream of every shard ("inbox:in", or "inbox.K:in")."""
        if SHARDS == 1:
            return ["inbox:%s" % name]
        return ["inbox.%d:%s" % (k, name) for k in range(SHARDS)]

    def count(self, d, k, n=1):
        with self.lock:
            d[k] = d.get(k, 0) + n

    # -- webhook traffic -------------------------------------------------------
    def poster(self, k):
        rng = random.Random(SEED + 100 + k)
        period = POSTERS / RATE
        nxt = time.monotonic()
        while not self.stop.is_set():
            with self.lock:
                self.seq += 1
                n = self.seq
            ext = "s-%d" % n
            thread = "t-%d" % rng.randrange(THREADS)
            body = json.dumps({
                "external_id": ext, "thread": thread,
                "contact": {"external_id": "c-" + thread,
                            "name": "Customer " + thread},
                "text": "soak message %d" % n}).encode()
            with self.lock:
                self.posts[ext] = "unacked"
            end = time.monotonic() + RETRY_S
            delay = 0.2
            while True:
                with self.lock:
                    self.attempts += 1
                try:
                    st, _, _ = self.w.http("POST", self.w.webhooks_port,
                                           "/hooks/api1", body,
                                           {"Content-Type":
                                            "application/json"}, timeout=10)
                except (OSError, http.client.HTTPException) as e:
                    st = type(e).__name__
                if isinstance(st, int) and 200 <= st < 300:
                    with self.lock:
                        self.posts[ext] = "acked"
                    break
                self.count(self.post_errors, str(st))
                if time.monotonic() + delay > end:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            nxt += period
            left = nxt - time.monotonic()
            if left > 0:
                self.stop.wait(left)
            else:
                nxt = time.monotonic()

    # -- agent traffic ---------------------------------------------------------
    def ws_connect(self, stop=None):
        stop = stop or self.stop
        token = None
        while not stop.is_set():
            try:
                if token is None:
                    st, js = self.w.login("soak", PW)
                    if st != 200:
                        raise OSError("login %s" % st)
                    token = js["token"]
                c = WsClient("127.0.0.1", self.w.gateway_port,
                             "/ws?token=" + urllib.parse.quote(token,
                                                               safe=""),
                             timeout=5)
                return c
            except WsHandshakeRefused as e:
                if e.status == 401:
                    token = None
            except (OSError, WsClosed, TestFailure, ValueError, KeyError):
                pass
            stop.wait(0.3)
        return None

    def agent(self):
        rng = random.Random(SEED + 7)
        ws = None
        convs = {"open": [], "closed": []}
        late = {}                # req -> (type, text) awaiting a late answer
        n = 0
        while not self.stop.is_set():
            if ws is None or ws.closed:
                if ws is not None:
                    self.ws_reconnects += 1
                    for req, (t, text) in late.items():
                        self.count(self.cmd.setdefault(t, {}), "unknown")
                    late = {}
                ws = self.ws_connect()
                if ws is None:
                    break
            try:
                # answers that came after their request timed out
                for req in [r for r in late if r in ws.results]:
                    t, text = late.pop(req)
                    self.settle_cmd(t, text, None, ws.results[req])
                if n % 25 == 0 or not (convs["open"] or convs["closed"]):
                    for state in ("open", "closed"):
                        d = ws.call("feed", timeout=10, state=state,
                                    limit=200)
                        convs[state] = [c["id"] for c in d["conversations"]
                                        if c["connector"] == "api1"]
                n += 1
                op = rng.choice(["message.send", "message.send", "note.add",
                                 "note.add", "conversation.tag",
                                 "conversation.close",
                                 "conversation.reopen"])
                pool = convs["closed"] if op == "conversation.reopen" \
                    else convs["open"] or convs["closed"]
                if not pool:
                    self.stop.wait(0.2)
                    continue
                cid = rng.choice(pool)
                fields = {"id": cid}
                text = None
                if op in ("message.send", "note.add"):
                    text = "%s %d/%d" % ("reply" if op == "message.send"
                                         else "note", SEED, n)
                    fields["text"] = text
                elif op == "conversation.tag":
                    fields["add"] = ["soak%d" % rng.randrange(10)]
                req = ws.next_req
                ws.next_req += 1
                msg = {"type": op, "req": req}
                msg.update(fields)
                self.count(self.cmd.setdefault(op, {}), "sent")
                with self.lock:
                    if text:
                        self.unknown_texts[text] = (op, cid)
                ws.send_json(msg)
                try:
                    r = ws.wait_result(req, 15, op)
                except TestFailure:
                    late[req] = (op, text)
                    continue
                self.settle_cmd(op, text, cid, r)
                if op == "conversation.close" and r.get("ok"):
                    if cid in convs["open"]:
                        convs["open"].remove(cid)
                    convs["closed"].append(cid)
                elif op == "conversation.reopen" and r.get("ok"):
                    if cid in convs["closed"]:
                        convs["closed"].remove(cid)
                    convs["open"].append(cid)
                # keep the socket's buffers small
                ws.events.clear()
                ws.results = {k: v for k, v in ws.results.items()
                              if k in late}
            except (WsClosed, OSError, socket.timeout):
                ws.closed = True
            except TestFailure as e:
                # a feed that timed out or failed (gateway restarting)
                if "failed" not in str(e) and "timed out" not in str(e) \
                        and "no result" not in str(e):
                    self.problems.append("agent: %s" % e)
                ws.closed = True
            self.stop.wait(rng.uniform(0.05, 0.25))
        if ws is not None:
            for req, (t, text) in late.items():
                if req in ws.results:
                    self.settle_cmd(t, text, None, ws.results[req])
                else:
                    self.count(self.cmd.setdefault(t, {}), "unknown")
            ws.close()

    def settle_cmd(self, op, text, cid, r):
        st = self.cmd.setdefault(op, {})
        if r.get("ok"):
            self.count(st, "ok")
            if text:
                with self.lock:
                    self.unknown_texts.pop(text, None)
                    self.acked_texts[text] = (op, cid)
        else:
            code = (r.get("error") or {}).get("code", "?")
            if code in ("unavailable", "too_many"):
                # not sent to the router, or no answer: the outcome is open
                self.count(st, "unknown")
            else:
                self.count(st, "refused")
                self.count(self.refusals, code)
                if text:
                    with self.lock:
                        self.unknown_texts.pop(text, None)

    # -- mail traffic ------------------------------------------------------------
    def mailer(self):
        rng = random.Random(SEED + 9)
        n = 0
        while not self.stop.is_set():
            n += 1
            mid = "soak.%d.%d@example.org" % (SEED, n)
            k = rng.randrange(50)
            raw = ("From: Customer %d <c%d@example.org>\r\n"
                   "To: support@example.com\r\n"
                   "Subject: soak mail %d\r\n"
                   "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
                   "Message-ID: <%s>\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                   "Mail number %d.\r\n" % (k, k, n, mid, n))
            with self.lock:
                self.mails[mid] = "unacked"
            try:
                self.dc.append(raw)
                with self.lock:
                    self.mails[mid] = "acked"
            except Exception as e:  # noqa: BLE001 - counted
                self.count(self.post_errors, "imap " + type(e).__name__)
            self.stop.wait(IMAP_EVERY)

    # -- chaos -------------------------------------------------------------------
    def reap_crashes(self):
        """Processes that exited without being told: recorded, restarted."""
        w = self.w
        for name in self.procs:
            p = w.redis_proc if name == "redis" else w.procs.get(name)
            if p is None or p.running() or p.expect_exit:
                continue
            lines = [ln for ln in _tail(p.logpath, 400).splitlines()
                     if any(s in ln for s in ("error", "fatal", "ERROR",
                                              "Sanitizer", "abort"))]
            self.crashes.append({"process": name, "rc": p.popen.returncode,
                                 "log": p.logpath, "lines": lines[-8:]})
            log("CRASH: %s exited with %s by itself" % (name,
                                                        p.popen.returncode))
            p.expect_exit = True
            self.start(name)

    def start(self, name):
        for attempt in range(5):
            try:
                if name == "redis":
                    self.w.start_redis(timeout=60)
                elif SHARDS > 1 and name.startswith("router"):
                    self.w.start(name, timeout=60,
                                 args=["-s", name[len("router"):]])
                else:
                    self.w.start(name, timeout=60)
                return True
            except (TestFailure, HarnessError) as e:
                self.problems.append("start %s: %s" % (name,
                                                       str(e)[:2000]))
                time.sleep(1)
        return False

    def tops(self):
        out = {}
        for s in self.keys("in") + self.keys("cmd"):
            r = self.w.redis("XREVRANGE", s, "+", "-", "COUNT", "1")
            out[s] = sid(r[0][0]) if r else (0, 0)
        return out

    def caught_up(self, tops):
        for s, top in tops.items():
            groups = self.w.redis("XINFO", "GROUPS", s)
            g = [dict(zip(x[0::2], x[1::2])) for x in groups]
            g = [x for x in g if x.get("name") == "router"]
            if not g or sid(g[0]["last-delivered-id"]) < top:
                return False
            pend = self.w.redis("XPENDING", s, "router")
            if int(pend[0]) and sid(pend[1]) <= top:
                return False
        return True

    def wait_caught_up(self, tops, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if self.caught_up(tops):
                    return True
            except Exception:  # noqa: BLE001 - Redis coming back
                pass
            time.sleep(0.1)
        return False

    def chaos(self, t_end):
        rng = random.Random(SEED + 3)
        w = self.w
        while True:
            wait = rng.uniform(KILL_MIN, KILL_MAX)
            if time.monotonic() + wait > t_end:
                break
            time.sleep(wait)
            self.reap_crashes()
            name = rng.choice(self.procs)
            log("chaos: SIGKILL %s" % name)
            t0 = time.monotonic()
            try:
                if name == "redis":
                    w.stop_redis(signal.SIGKILL)
                else:
                    w.kill(name)
            except (TestFailure, HarnessError) as e:
                # it died by itself just now: reaped at the next round
                self.problems.append("killing %s: %s" % (name, str(e)[:500]))
                continue
            self.kills[name] = self.kills.get(name, 0) + 1
            time.sleep(rng.uniform(0, 2))
            if not self.start(name):
                self.problems.append("%s did not come back" % name)
                continue
            t_ready = time.monotonic()
            self.downtime.setdefault(name, []).append(t_ready - t0)
            try:
                tops = self.tops()
            except Exception as e:  # noqa: BLE001
                self.problems.append("reading stream tops: %s" % e)
                continue
            if self.wait_caught_up(tops, 120):
                took = time.monotonic() - t0
                self.catchup.setdefault(name, []).append(took)
                log("chaos: %s back in %.2fs, backlog consumed %.2fs after "
                    "the kill" % (name, t_ready - t0, took))
            else:
                self.problems.append("router did not catch up within 120 s "
                                     "after %s was killed" % name)

    # -- the check ---------------------------------------------------------------
    def settle(self):
        """After traffic stopped: everything running, streams consumed, the
        acknowledged mail in the store."""
        self.reap_crashes()
        t0 = time.monotonic()
        ok = self.wait_caught_up(self.tops(), 300)
        if not ok:
            self.problems.append("router did not consume its streams within"
                                 " 300 s of the end")
        return time.monotonic() - t0

    def store_contents(self):
        w = self.w
        if SHARDS == 1:
            convs = w.conversations("all")
        else:
            convs = []
            for k in range(SHARDS):
                cp = w.inboxctl("-s", str(k), "conversations", "--state",
                                "all", "--json", timeout=120)
                convs += json.loads(cp.stdout.decode())
        never = threading.Event()
        threading.Timer(60, never.set).start()
        ws = self.ws_connect(never)
        if ws is None:
            raise HarnessError("no websocket to read the store with")
        msgs_in, outs, notes = {}, {}, {}
        count_sum = 0
        for c in convs:
            count_sum += c.get("message_count", 0)
            g = ws.call("conversation.get", timeout=60, id=c["id"])
            for m in g["messages"]:
                if m["direction"] == "in":
                    key = (m["connector"], m["external_id"].strip("<>"))
                    msgs_in[key] = msgs_in.get(key, 0) + 1
                elif m["direction"] == "out" and m.get("author"):
                    outs[m["text"]] = outs.get(m["text"], 0) + 1
            for m in g["notes"]:
                notes[m["text"]] = notes.get(m["text"], 0) + 1
        ws.close()
        return convs, msgs_in, outs, notes, count_sum

    def announced(self):
        """message.created events per (connector, external id) of in
        messages."""
        out = {}
        for stream in self.keys("events"):
            last = "-"
            while True:
                r = self.w.redis("XRANGE", stream, last, "+", "COUNT",
                                 "5000")
                if last != "-":
                    r = r[1:]
                if not r:
                    break
                for eid, f in r:
                    f = dict(zip(f[0::2], f[1::2]))
                    if f.get("event") == "message.created":
                        m = json.loads(f["data"])["message"]
                        if m.get("direction") == "in":
                            k = (m["connector"],
                                 m["external_id"].strip("<>"))
                            out[k] = out.get(k, 0) + 1
                last = r[-1][0]
        return out

    def run(self):
        t_start = time.monotonic()
        self.up()
        log("soak: %ds, seed %d, %s, world %s" % (
            SECONDS, SEED, "with IMAP" if self.dc else "without IMAP",
            self.w.tmp))
        t_end = time.monotonic() + SECONDS
        threads = [threading.Thread(target=self.poster, args=(k,),
                                    daemon=True) for k in range(POSTERS)]
        threads.append(threading.Thread(target=self.agent, daemon=True))
        if self.dc:
            threads.append(threading.Thread(target=self.mailer, daemon=True))
        for t in threads:
            t.start()
        chaos = threading.Thread(target=self.chaos, args=(t_end,),
                                 daemon=True)
        chaos.start()
        last_report = time.monotonic()
        while time.monotonic() < t_end:
            time.sleep(1)
            if time.monotonic() - last_report >= 60:
                last_report = time.monotonic()
                with self.lock:
                    acked = sum(1 for v in self.posts.values()
                                if v == "acked")
                log("soak: %d posts acked, %d kills, %d crashes" % (
                    acked, sum(self.kills.values()), len(self.crashes)))
        self.stop.set()
        chaos.join()
        for t in threads:
            t.join(RETRY_S + 30)
        settle_s = self.settle()
        # the mail acknowledged must reach the store (inbox-imap fetches it)
        want_mail = {m for m, v in self.mails.items() if v == "acked"}
        t_mail = time.monotonic()
        while want_mail and time.monotonic() - t_mail < 120:
            got = self.announced()
            if all(("mail1", m) in got for m in want_mail):
                break
            time.sleep(1)
        settle_s += time.monotonic() - t_mail
        self.wait_caught_up(self.tops(), 60)
        convs, msgs_in, outs, notes, count_sum = self.store_contents()
        ann = self.announced()
        return self.verdict(t_start, settle_s, convs, msgs_in, outs, notes,
                            count_sum, ann)

    def verdict(self, t_start, settle_s, convs, msgs_in, outs, notes,
                count_sum, ann):
        bad = list(self.problems)
        acked = {("api1", e) for e, v in self.posts.items() if v == "acked"}
        acked |= {("mail1", m) for m, v in self.mails.items()
                  if v == "acked"}
        sent = {("api1", e) for e in self.posts} | \
            {("mail1", m) for m in self.mails}
        missing = sorted(k for k in acked if msgs_in.get(k, 0) == 0)
        doubled = sorted(k for k, n in msgs_in.items() if n > 1)
        foreign = sorted(k for k in msgs_in if k not in sent)
        ann_missing = sorted(k for k in acked if ann.get(k, 0) == 0)
        ann_doubled = sorted(k for k, n in ann.items() if n > 1)
        if missing:
            bad.append("%d acknowledged messages not in the store: %s" % (
                len(missing), missing[:20]))
        if doubled:
            bad.append("%d messages stored more than once: %s" % (
                len(doubled), doubled[:20]))
        if foreign:
            bad.append("%d stored messages nobody sent: %s" % (
                len(foreign), foreign[:20]))
        if ann_missing:
            bad.append("%d acknowledged messages never announced: %s" % (
                len(ann_missing), ann_missing[:20]))
        if ann_doubled:
            bad.append("%d messages announced more than once: %s" % (
                len(ann_doubled), ann_doubled[:20]))
        stored_texts = dict(outs)
        stored_texts.update(notes)
        for text, (op, _) in self.acked_texts.items():
            n = stored_texts.get(text, 0)
            if n != 1:
                bad.append("acknowledged %s %r stored %d times" % (op, text,
                                                                   n))
        for text, (op, _) in self.unknown_texts.items():
            if stored_texts.get(text, 0) > 1:
                bad.append("unanswered %s %r stored %d times" % (
                    op, text, stored_texts[text]))
        for text, n in stored_texts.items():
            if n > 1 and text not in self.acked_texts:
                bad.append("%r stored %d times" % (text, n))
        n_in = sum(msgs_in.values())
        n_out = sum(outs.values())
        if count_sum < n_in:
            bad.append("message_count sum %d < %d messages in" % (count_sum,
                                                                  n_in))
        for c in self.crashes:
            bad.append("%s died by itself (rc %s): %s" % (
                c["process"], c["rc"], " | ".join(c["lines"])))
        fig = {
            "seed": SEED, "seconds": SECONDS,
            "wall_s": round(time.monotonic() - t_start, 1),
            "imap": bool(self.dc),
            "webhook_messages_sent": len(self.posts),
            "webhook_messages_acked": sum(1 for v in self.posts.values()
                                          if v == "acked"),
            "webhook_posts": self.attempts,
            "webhook_refusals": self.post_errors,
            "mail_appended": sum(1 for v in self.mails.values()
                                 if v == "acked"),
            "messages_acked": len(acked),
            "messages_stored": n_in,
            "messages_stored_distinct": len(msgs_in),
            "acked_missing": len(missing), "stored_twice": len(doubled),
            "conversations": len(convs),
            "agent_commands": self.cmd, "command_refusals": self.refusals,
            "replies_stored": n_out, "notes_stored": sum(notes.values()),
            "ws_reconnects": self.ws_reconnects,
            "kills": self.kills,
            "downtime_max_s": {k: round(max(v), 2)
                               for k, v in self.downtime.items()},
            "catchup_max_s": {k: round(max(v), 2)
                              for k, v in self.catchup.items()},
            "catchup_mean_s": {k: round(sum(v) / len(v), 2)
                               for k, v in self.catchup.items()},
            "settle_s": round(settle_s, 1),
            "crashes": self.crashes,
            "problems": bad,
        }
        return fig


def main():
    s = Soak()
    code = 1
    try:
        fig = s.run()
        print(json.dumps(fig, indent=1, sort_keys=True))
        if os.environ.get("SOAK_JSON"):
            with open(os.environ["SOAK_JSON"], "w") as f:
                json.dump(fig, f, indent=1, sort_keys=True)
        print("\nsoak: %d messages acknowledged (%d by webhook, %d by IMAP),"
              " %d stored, %d missing, %d doubled; kills %s; max catch-up "
              "%s s" % (fig["messages_acked"], fig["webhook_messages_acked"],
                        fig["mail_appended"], fig["messages_stored"],
                        fig["acked_missing"], fig["stored_twice"],
                        fig["kills"], fig["catchup_max_s"]))
        code = 0 if not fig["problems"] else 1
        print("soak: %s" % ("PASS" if code == 0 else
                            "FAIL:\n  " + "\n  ".join(fig["problems"])))
    except BaseException:  # noqa: BLE001 - report, keep the logs
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        s.stop.set()
        if s.w is not None:
            keep = code != 0 or os.environ.get("SOAK_KEEP") == "1"
            s.w.failed = keep
            s.w.dump_logs = lambda: None   # the directory is kept instead
            try:
                s.w.cleanup()
            except Exception:  # noqa: BLE001
                pass
            if keep:
                print("soak: logs kept in %s" % s.w.tmp)
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
