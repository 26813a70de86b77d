#!/usr/bin/env python3
"""inboxd integration tests: real Redis, router, webhooks and gateway.

Usage: inboxd_tests.py TEST_ID   (see TESTS at the bottom; `--list` lists)
Env:   INBOXD_BUILD (build dir), INBOXD_SRC (source root).
Each run starts its own world through tests/harness/inboxd_harness.py and
exits 0 (pass), 1 (fail) or 99 (harness error).
"""

import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    TestFailure, WsClosed, check, check_eq, envelope, log, run_test,
    stream_entries, wait_for, ws_closed)

PASSWORD = "correct horse battery staple"
TS0 = 1790000000000
STREAM_ID = re.compile(r"^\d+-\d+$")


# --------------------------------------------------------------------------
# helpers

def seq_key(seq):
    check(isinstance(seq, str) and STREAM_ID.match(seq),
          "seq is not a stream id: %r" % (seq,))
    a, b = seq.split("-")
    return (int(a), int(b))


def agent_ws(w, login="alice", password=PASSWORD, name="Alice Agent"):
    """Create an agent with inboxctl, log in, open a websocket."""
    w.add_agent(login, password, name=name)
    token = w.token(login, password)
    ws = w.ws_connect(token)
    ws.call("ping")          # the session is registered from here on
    return ws, token


def is_msg(ext_id):
    return lambda e: e["data"]["message"]["external_id"] == ext_id


def is_conv(thread):
    return lambda e: e["data"]["conversation"]["thread"] == thread


def wait_msg(ws, ext_id, timeout=5.0):
    return ws.wait_event("message.created", is_msg(ext_id), timeout)


def get_conv(ws, conv_id):
    d = ws.call("conversation.get", id=conv_id)
    check(isinstance(d.get("conversation"), dict)
          and isinstance(d.get("messages"), list),
          "conversation.get data lacks conversation/messages", d)
    return d


def ext_ids(messages):
    return [m.get("external_id") for m in messages]


def feed_all(ws, state="open", limit=50):
    """Every conversation of the feed, following `next` cursors."""
    out = []
    fields = {"state": state, "limit": limit}
    for _ in range(1000):
        d = ws.call("feed", **fields)
        check(isinstance(d.get("conversations"), list) and "next" in d,
              "feed data lacks conversations/next", d)
        out.extend(d["conversations"])
        if d["next"] is None:
            return out
        fields["before"] = d["next"]
    raise TestFailure("feed cursor never ends")


def check_error(result, code, what):
    check(result.get("type") == "result" and result.get("ok") is False,
          "%s: expected ok:false" % what, result)
    err = result.get("error")
    check(isinstance(err, dict) and err.get("code") == code,
          "%s: expected error code %s" % (what, code), result)
    check(isinstance(err.get("message"), str) and err["message"],
          "%s: error has no message" % what, result)


# --------------------------------------------------------------------------
# 1

def test_post_reaches_websocket(w):
    ws, _ = agent_ws(w)
    now = ws.call("ping")
    check(isinstance(now.get("now"), int), "ping data has no now", now)
    body = envelope("m-1", "t-1", text="Hello, where is my order?",
                    contact={"external_id": "c-ann", "name": "Ann",
                             "email": "ann@example.com"},
                    ts=TS0, subject="Order 17")
    t0 = time.monotonic()
    js = w.post_ok("api1", body)
    check(STREAM_ID.match(js["id"]), "202 id is not a stream id", js)
    mc = wait_msg(ws, "m-1", timeout=5)
    left = max(0.1, 5 - (time.monotonic() - t0))
    cc = ws.wait_event("conversation.created", is_conv("t-1"), timeout=left)
    log("events arrived %.3fs after the POST" % (time.monotonic() - t0))

    conv = cc["data"]["conversation"]
    check(isinstance(conv.get("id"), int) and conv["id"] > 0,
          "conversation id is not a positive integer", conv)
    check_eq(conv.get("thread"), "t-1", "conversation.thread")
    check_eq(conv.get("connector"), "api1", "conversation.connector")
    check_eq(conv.get("channel"), "api", "conversation.channel")
    check_eq(conv.get("state"), "open", "conversation.state")
    check(isinstance(conv.get("contact"), dict), "no contact", conv)
    check_eq(conv["contact"].get("name"), "Ann", "conversation.contact.name")
    check_eq(conv["contact"].get("email"), "ann@example.com",
             "conversation.contact.email")

    d = mc["data"]
    msg = d["message"]
    check_eq(d.get("conversation_id"), conv["id"],
             "message.created data.conversation_id")
    check_eq(msg.get("conversation_id"), conv["id"], "message.conversation_id")
    check_eq(msg.get("external_id"), "m-1", "message.external_id")
    check_eq(msg.get("text"), "Hello, where is my order?", "message.text")
    check_eq(msg.get("direction"), "in", "message.direction")
    check_eq(msg.get("connector"), "api1", "message.connector")
    check_eq(msg.get("channel"), "api", "message.channel")
    check_eq(msg.get("ts"), TS0, "message.ts")
    check_eq(msg.get("subject"), "Order 17", "message.subject")
    check(isinstance(msg.get("id"), int), "message id not an integer", msg)
    check(seq_key(cc["seq"]) < seq_key(mc["seq"]),
          "conversation.created must come before its message.created",
          [cc, mc])
    check(len(ws.find_events("message.created")) == 1
          and len(ws.find_events("conversation.created")) == 1,
          "exactly one conversation.created and one message.created expected",
          ws.events)

    g = get_conv(ws, conv["id"])
    check_eq(g["conversation"].get("message_count"), 1, "message_count")
    check_eq(ext_ids(g["messages"]), ["m-1"], "conversation.get messages")
    check_eq(g["messages"][0].get("id"), msg["id"], "stored message id")
    check_eq(g["messages"][0].get("text"), msg["text"], "stored message text")


# --------------------------------------------------------------------------
# 2

def test_thread_joins_conversation(w):
    ws, _ = agent_ws(w)
    w.post_ok("api1", envelope("m-1", "t-1", text="first", ts=TS0))
    m1 = wait_msg(ws, "m-1")
    w.post_ok("api1", envelope("m-2", "t-1", text="second", ts=TS0 + 1000))
    m2 = wait_msg(ws, "m-2")
    w.post_ok("api1", envelope("m-3", "t-2", text="other", ts=TS0 + 2000))
    m3 = wait_msg(ws, "m-3")
    c2 = ws.wait_event("conversation.created", is_conv("t-2"))

    cid1 = m1["data"]["conversation_id"]
    check_eq(m2["data"]["conversation_id"], cid1,
             "conversation of the second message on thread t-1")
    cid2 = m3["data"]["conversation_id"]
    check(cid2 != cid1, "thread t-2 must get a new conversation, got %s"
          % cid2)
    check_eq(c2["data"]["conversation"]["id"], cid2,
             "conversation.created id for t-2")
    t1_created = ws.find_events("conversation.created", is_conv("t-1"))
    check_eq(len(t1_created), 1, "conversation.created events for t-1")

    g1 = get_conv(ws, cid1)
    check_eq(g1["conversation"].get("message_count"), 2,
             "message_count of t-1")
    check_eq(ext_ids(g1["messages"]), ["m-1", "m-2"],
             "messages of t-1, oldest first")
    check_eq([m.get("text") for m in g1["messages"]], ["first", "second"],
             "texts of t-1")
    check(g1["messages"][0]["id"] != g1["messages"][1]["id"],
          "two messages share an id", g1)
    g2 = get_conv(ws, cid2)
    check_eq(g2["conversation"].get("message_count"), 1,
             "message_count of t-2")
    check_eq(ext_ids(g2["messages"]), ["m-3"], "messages of t-2")

    convs = w.conversations("all")
    check_eq(sorted(c["id"] for c in convs), sorted([cid1, cid2]),
             "conversations listed by inboxctl")


# --------------------------------------------------------------------------
# 3

def test_duplicate_external_id(w):
    ws, _ = agent_ws(w)
    original = envelope("m-1", "t-1", text="original", ts=TS0)
    w.post_ok("api1", original)
    first = wait_msg(ws, "m-1")
    cid = first["data"]["conversation_id"]

    w.post_ok("api1", original)                 # exact redelivery
    w.post_ok("api1", envelope("m-1", "t-1", text="changed", ts=TS0 + 5))
    w.post_ok("api1", envelope("m-2", "t-1", text="marker", ts=TS0 + 10))
    # inbox:in is consumed in order: once the marker is announced, both
    # duplicates have been handled.
    wait_msg(ws, "m-2")
    ws.drain(quiet=0.5)
    dups = ws.find_events("message.created", is_msg("m-1"))
    check_eq(len(dups), 1, "message.created events for m-1")
    check_eq(len(ws.find_events("conversation.created")), 1,
             "conversation.created events")

    g = get_conv(ws, cid)
    check_eq(ext_ids(g["messages"]), ["m-1", "m-2"],
             "stored messages after the duplicates")
    check_eq(g["messages"][0].get("text"), "original",
             "text of the first copy (a duplicate must not overwrite it)")
    check_eq(g["conversation"].get("message_count"), 2, "message_count")
    check_eq(w.redis("XLEN", "inbox:dead"), 0,
             "inbox:dead length (a duplicate is not an error)")


# --------------------------------------------------------------------------
# 4

def snapshot(ws):
    feed = ws.call("feed", state="open", limit=50)
    convs = {}
    for c in feed["conversations"]:
        convs[c["id"]] = get_conv(ws, c["id"])
    return {"feed": feed, "conversations": convs}


def test_everything_survives_sigkill(w):
    ws, token = agent_ws(w)
    w.post_ok("api1", envelope("a-1", "t-a", text="first", ts=TS0))
    w.post_ok("api1", envelope("b-1", "t-b", text="other", ts=TS0 + 100,
                               contact={"external_id": "c-bob",
                                        "name": "Bob", "phone": "+100"},
                               subject="Refund", x_custom={"k": [1, 2]}))
    w.post_ok("api1", envelope("a-2", "t-a", text="second", ts=TS0 + 200))
    for e in ("a-1", "b-1", "a-2"):
        wait_msg(ws, e)
    ws.drain(quiet=0.3)
    last_seq = max((e["seq"] for e in ws.events), key=seq_key)
    before = snapshot(ws)
    check_eq(len(before["feed"]["conversations"]), 2, "conversations before")
    ctl_before = w.conversations("all")
    old_ids = {m["id"] for c in before["conversations"].values()
               for m in c["messages"]}
    ws.close()

    log("SIGKILL router, webhooks, gateway and redis")
    w.kill_all()
    w.start_redis()
    w.start("router")
    w.start("webhooks")
    w.start("gateway")

    ws2 = w.ws_connect(token)          # the old token is still valid
    after = snapshot(ws2)
    check(json.dumps(after, sort_keys=True) == json.dumps(before,
                                                          sort_keys=True),
          "feed/conversation.get differ after the restart",
          "before:", before, "after:", after)
    check_eq(w.conversations("all"), ctl_before,
             "inboxctl conversations after the restart")
    token2 = w.token("alice", PASSWORD)
    w.ws_connect(token2).close()
    st, js = w.login("alice", "wrong password")
    check_eq(st, 401, "wrong password after the restart")

    # Nothing is announced twice after the restart. (The only news are
    # alice's sockets: agent.presence offline and online.)
    r = ws2.call("subscribe", since=last_seq)
    presence = [e for e in ws2.events if e.get("event") == "agent.presence"]
    check(r.get("replayed", -1) <= len(presence),
          "events replayed after the last seen seq beyond presence", r,
          ws2.events)
    check_eq([e for e in ws2.events if e.get("event", "").startswith(
        ("message.", "conversation."))], [],
        "events pushed after a restart with no news")

    # And the system still works: a new message joins the old thread with
    # a fresh id.
    cid_a = before["feed"]["conversations"]
    cid_a = [c["id"] for c in cid_a if c["thread"] == "t-a"][0]
    w.post_ok("api1", envelope("a-3", "t-a", text="after", ts=TS0 + 300))
    m = wait_msg(ws2, "a-3", timeout=10)
    check_eq(m["data"]["conversation_id"], cid_a, "conversation of a-3")
    check(m["data"]["message"]["id"] not in old_ids,
          "a new message reused an old message id", m, sorted(old_ids))
    check(seq_key(m["seq"]) > seq_key(last_seq),
          "new event seq not above the old ones", m, last_seq)
    g = get_conv(ws2, cid_a)
    check_eq(ext_ids(g["messages"]), ["a-1", "a-2", "a-3"],
             "messages of t-a after the restart")

    # A message answered 202 is durable even when everything is SIGKILLed
    # right after the answer (processed or not by then).
    ws2.drain(quiet=0.3)
    last_seq = ws2.events[-1]["seq"]
    ws2.close()
    w.post_ok("api1", envelope("late-1", "t-late", text="just before the "
                               "crash", ts=TS0 + 400))
    w.kill_all()
    w.start_redis()
    w.start("router")
    w.start("webhooks")
    w.start("gateway")
    ws3 = w.ws_connect(token)
    ws3.call("subscribe", since=last_seq)
    late = wait_msg(ws3, "late-1", timeout=10)
    ws3.drain(quiet=0.5)
    check_eq([e["data"]["message"]["external_id"]
              for e in ws3.find_events("message.created")], ["late-1"],
             "messages announced after the second crash")
    check_eq(len(ws3.find_events("conversation.created")), 1,
             "conversation.created after the second crash")
    g = get_conv(ws3, late["data"]["conversation_id"])
    check_eq(ext_ids(g["messages"]), ["late-1"], "messages of t-late")
    check_eq(ext_ids(get_conv(ws3, cid_a)["messages"]), ["a-1", "a-2", "a-3"],
             "messages of t-a after the second crash")


# --------------------------------------------------------------------------
# 5

def test_router_sigkill_mid_stream(w):
    n_posters, per_poster, n_threads = 6, 50, 5
    total = n_posters * per_poster
    ws, token = agent_ws(w)
    accepted = []
    errors = []
    lock = threading.Lock()
    gate = threading.Event()     # posters hold at 2/3 until the first kill

    def poster(k):
        for i in range(per_poster):
            with lock:
                hold = len(accepted) >= 2 * total // 3
            if hold:
                gate.wait(60)
            ext = "p%d-%03d" % (k, i)
            body = envelope(ext, "t-%d" % ((k + i) % n_threads),
                            text="message %s" % ext, ts=TS0 + i)
            try:
                st, js = w.post("api1", body)
            except Exception as e:  # noqa: BLE001
                st, js = None, repr(e)
            with lock:
                if st == 202:
                    accepted.append(ext)
                else:
                    errors.append((ext, st, js))

    threads = [threading.Thread(target=poster, args=(k,), daemon=True)
               for k in range(n_posters)]
    for t in threads:
        t.start()

    def announced():
        return len(ws.find_events("message.created"))

    # Kill 1: while posts are flowing in and the router is consuming them
    # (it has announced at least one message).
    def consuming():
        with lock:
            n = len(accepted)
        return n >= total // 3 and announced() > 0
    ws.wait_until(consuming, 60, "the router to consume while posting goes "
                  "on", step=0.01)
    w.kill("router")
    pending = w.redis("XPENDING", "inbox:in", "router")
    with lock:
        n_acc = len(accepted)
    seen1 = announced()
    log("kill 1: %d posts accepted, %d announced, %s pending in inbox:in"
        % (n_acc, seen1, pending[0]))
    gate.set()
    for t in threads:
        t.join(90)
    check(not errors, "posts failed while the router was down", errors[:10])
    check_eq(len(accepted), total, "accepted posts")

    # Kill 2: right after the restarted router announces its first message
    # from the backlog (it is committing and appending events now).
    w.start("router")
    ws.wait_until(lambda: announced() > seen1, 60,
                  "the restarted router to announce a message", step=0.005)
    w.kill("router")
    pending = w.redis("XPENDING", "inbox:in", "router")
    log("kill 2: %d announced, %s pending in inbox:in"
        % (announced(), pending[0]))
    w.start("router")

    want = set(accepted)

    def all_announced():
        got = {e["data"]["message"]["external_id"]
               for e in ws.find_events("message.created")}
        return got >= want
    try:
        ws.wait_until(all_announced, 60, "message.created for all %d "
                      "messages" % total, step=0.2)
    except TestFailure:
        got = {e["data"]["message"]["external_id"]
               for e in ws.find_events("message.created")}
        log("announced %d of %d; XPENDING %s; XLEN inbox:in %s; "
            "stored %s" % (len(got), total,
                           w.redis("XPENDING", "inbox:in", "router"),
                           w.redis("XLEN", "inbox:in"),
                           sum(c["message_count"]
                               for c in w.conversations("all"))))
        raise
    ws.drain(quiet=1.0)
    live = ws.find_events("message.created")
    live_ext = [e["data"]["message"]["external_id"] for e in live]
    live_ids = [e["data"]["message"]["id"] for e in live]
    dup_ext = sorted({x for x in live_ext if live_ext.count(x) > 1})
    check(not dup_ext, "message.created pushed twice for", dup_ext[:20])
    check_eq(len(set(live_ids)), total, "distinct message ids pushed live")
    live_seqs = [e["seq"] for e in ws.events]
    check_eq(len(set(live_seqs)), len(live_seqs),
             "distinct seqs among live pushes")

    # Phase B, deterministic: the router commits a batch but cannot append
    # its events (inbox:events made read-only by an ACL), so nothing is
    # acknowledged; it is SIGKILLed in that state.  After the restart every
    # event must come out once (outbox replay) and the redelivered entries
    # must not be stored again.
    n_b = 20
    w.redis("ACL", "SETUSER", "default", "resetkeys", "~inbox:[^e]*",
            "%R~*")
    try:
        for i in range(n_b):
            ext = "b-%03d" % i
            w.post_ok("api1", envelope(ext, "t-%d" % (i % n_threads),
                                       text="phase b %d" % i, ts=TS0 + i))
            accepted.append(ext)
        # The router commits a batch, fails to append its events and (being
        # correct) stops there: wait for the first committed phase-B
        # message.
        committed = wait_for(
            lambda: sum(c["message_count"] for c in
                        w.conversations("all")) - total, 30,
            "the router to commit phase-B messages while it cannot append "
            "events", interval=0.1)
        ws.drain(quiet=0.3)
        early = [e for e in ws.find_events("message.created")
                 if e["data"]["message"]["external_id"].startswith("b-")]
        check_eq(early, [], "events appended to a read-only inbox:events")
        pend_b = w.redis("XPENDING", "inbox:in", "router")[0]
        log("phase B: %d of %d committed without events, %d entries "
            "pending in inbox:in" % (committed, n_b, pend_b))
        p = w.procs["router"]
        if not p.running():
            log("NOTE: the router exited (%s) when Redis refused its XADD"
                % p.popen.returncode)
            p.expect_exit = True
        else:
            w.kill("router")
    finally:
        w.redis("ACL", "SETUSER", "default", "allkeys")
    w.start("router")
    total += n_b
    want = set(accepted)
    ws.wait_until(all_announced, 30, "message.created for the phase-B "
                  "messages after the restart", step=0.2)

    # Phase C, deterministic: every entry of inbox:in is delivered again
    # (what a crash between commit and XACK produces): nothing new may be
    # stored or announced.
    w.redis("XGROUP", "SETID", "inbox:in", "router", "0")
    n_before = len(ws.events)
    w.post_ok("api1", envelope("marker", "t-0", ts=TS0 + 999))
    accepted.append("marker")
    total += 1
    want = set(accepted)
    wait_msg(ws, "marker", timeout=30)
    ws.drain(quiet=1.0)
    again = [e["data"]["message"]["external_id"]
             for e in ws.find_events("message.created", start=n_before)]
    check_eq(again, ["marker"], "messages announced after redelivering "
             "all of inbox:in")
    ws.drain(quiet=0.5)
    live = ws.find_events("message.created")
    live_ext = [e["data"]["message"]["external_id"] for e in live]
    dup_ext = sorted({x for x in live_ext if live_ext.count(x) > 1})
    check(not dup_ext, "message.created pushed twice for", dup_ext[:20])
    check_eq(set(live_ext), want, "messages announced live")
    live_seqs = [e["seq"] for e in ws.events]
    check_eq(len(set(live_seqs)), len(live_seqs),
             "distinct seqs among live pushes")

    # The store: every message exactly once.
    convs = w.conversations("all")
    check_eq(sorted(c["thread"] for c in convs),
             ["t-%d" % i for i in range(n_threads)],
             "one conversation per thread")
    check_eq(sum(c["message_count"] for c in convs), total,
             "sum of message_count")
    check_eq(sorted(c["id"] for c in feed_all(ws, limit=2)),
             sorted(c["id"] for c in convs),
             "conversations of the feed paged by 2 vs inboxctl")
    stored = []
    for c in convs:
        g = get_conv(ws, c["id"])
        check_eq(len(g["messages"]), c["message_count"],
                 "messages of conversation %s" % c["id"])
        stored.extend(g["messages"])
    s_ext = ext_ids(stored)
    check_eq(len(s_ext), total, "stored messages")
    check_eq(set(s_ext), want, "stored external_ids")
    check_eq(len({m["id"] for m in stored}), total, "distinct stored ids")

    # The event stream: a fresh socket replays everything since 0-0, each
    # message.created exactly once and in seq order.
    ws.close()
    ws2 = w.ws_connect(token)
    r = ws2.call("subscribe", since="0-0", timeout=30)
    replay = list(ws2.events)
    check_eq(r.get("replayed"), len(replay), "replayed count vs pushes")
    seqs = [seq_key(e["seq"]) for e in replay]
    check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
          "replayed seqs not strictly increasing")
    rep_msgs = [e for e in replay if e["event"] == "message.created"]
    rep_ext = [e["data"]["message"]["external_id"] for e in rep_msgs]
    check_eq(len(rep_ext), total, "message.created events in the stream")
    check_eq(set(rep_ext), want, "external_ids of replayed events")
    check_eq(len({e["data"]["message"]["id"] for e in rep_msgs}), total,
             "distinct message ids in the stream")
    check_eq(len([e for e in replay if e["event"] == "conversation.created"]),
             n_threads, "conversation.created events in the stream")
    check_eq(r.get("last"), replay[-1]["seq"], "subscribe result last")

    # inboxctl reads the same stream.
    tail = w.events_tail("0-0", count=len(replay), timeout=30)
    check_eq([e.get("seq") for e in tail], [e["seq"] for e in replay],
             "seqs from inboxctl events tail")
    check_eq([e.get("event") for e in tail], [e["event"] for e in replay],
             "event names from inboxctl events tail")
    pend = w.redis("XPENDING", "inbox:in", "router")
    check_eq(pend[0], 0, "entries still pending in inbox:in")


# --------------------------------------------------------------------------
# 6

def tamper(token, pos):
    """token with the character at pos replaced by another character of the
    same kind (so only the content, not the format, changes)."""
    while not token[pos].isalnum():
        pos += 1
    c = token[pos]
    if c.isdigit():
        r = "1" if c != "1" else "2"
    elif c.islower():
        r = "a" if c != "a" else "b"
    else:
        r = "A" if c != "A" else "B"
    return token[:pos] + r + token[pos + 1:]


def test_auth_refusals(w):
    w.add_agent("alice", PASSWORD, name="Alice Agent")
    st, js = w.login("alice", PASSWORD + "x")
    check_eq(st, 401, "status for a wrong password")
    check(isinstance(js, dict) and js.get("error", {}).get("code")
          == "bad_credentials", "wrong password: code bad_credentials", js)
    check("token" not in js, "a failed login returned a token", js)
    st, js = w.login("mallory", PASSWORD)
    check_eq(st, 401, "status for an unknown login")
    check(isinstance(js, dict) and js.get("error", {}).get("code")
          == "bad_credentials", "unknown login: code bad_credentials", js)
    st, _ = w.login(None, None, raw=b'{"login": "alice", ')
    check_eq(st, 400, "status for a malformed login body")

    st, js = w.login("alice", PASSWORD)
    check_eq(st, 200, "status for the right password")
    token = js.get("token")
    check(isinstance(token, str) and len(token) >= 16, "token", js)
    check(isinstance(js.get("expires"), int)
          and js["expires"] > time.time() * 1000, "expires", js)
    check_eq(js.get("agent"), {"login": "alice", "name": "Alice Agent",
                               "role": "agent"}, "agent of the login answer")

    cases = [
        ("no token", "/ws"),
        ("empty token", "/ws?token="),
        ("garbage token", "/ws?token=garbage"),
        ("tampered token (middle)", "/ws?token=" + tamper(token,
                                                          len(token) // 2)),
        ("tampered token (end)", "/ws?token=" + tamper(token,
                                                       len(token) - 3)),
        ("tampered token (start)", "/ws?token=" + tamper(token, 0)),
        ("truncated token", "/ws?token=" + token[:-1]),
    ]
    for what, path in cases:
        st = w.ws_handshake_status(path)
        check(st != 101, "websocket with %s was accepted" % what)
        check_eq(st, 401, "handshake status with %s" % what)

    # A password change keeps the agent; the old password stops working.
    w.inboxctl("agent", "passwd", "alice", "--password-stdin",
               input="new password\n")
    st, _ = w.login("alice", PASSWORD)
    check_eq(st, 401, "old password after agent passwd")
    check_eq(w.login("alice", "new password")[0], 200,
             "new password after agent passwd")

    # A password change revokes the tokens given for the old one.
    check_eq(w.ws_handshake_status("/ws?token=" + token), 401,
             "a token of the old password after agent passwd")
    token = w.token("alice", "new password")
    ws = w.ws_connect(token)
    check(isinstance(ws.call("ping").get("now"), int), "ping on valid ws")

    # Logout revokes the token and closes its sockets; another login's
    # token goes on working.
    other = w.token("alice", "new password")
    st, _, _ = w.http("POST", w.gateway_port, "/api/logout",
                      headers={"Authorization": "Bearer " + token})
    check_eq(st, 200, "logout")
    wait_for(lambda: ws_closed(ws), 5, "the logged-out socket closed")
    check_eq(w.ws_handshake_status("/ws?token=" + token), 401,
             "a logged-out token")
    check_eq(w.ws_handshake_status("/ws?token=" + other), 101,
             "another session of the same agent")
    st, _, _ = w.http("POST", w.gateway_port, "/api/logout",
                      body=json.dumps({"token": "garbage"}).encode(),
                      headers={"Content-Type": "application/json"})
    check_eq(st, 401, "logout with a bad token")

    # A websocket from a page of another site is refused.
    check_eq(w.ws_handshake_status("/ws?token=" + other,
                                   origin="http://evil.example"),
             401, "a foreign Origin")
    check_eq(w.ws_handshake_status("/ws?token=" + other), 101,
             "the gateway's own Origin")

    # Failed logins are limited per account: after five failures in the
    # window (two above, three here) a try is refused with 429, even with
    # the right password; other accounts are not affected.
    w.add_agent("bob", PASSWORD)
    for i in range(3):
        check_eq(w.login("alice", "wrong %d" % i)[0], 401, "wrong try %d" % i)
    st, js = w.login("alice", "new password")
    check_eq(st, 429, "the account is rate-limited")
    check_eq(js.get("error", {}).get("code"), "rate_limited", "code")
    check_eq(w.login("bob", PASSWORD)[0], 200, "another account logs in")


# --------------------------------------------------------------------------
# 7

def test_malformed_posts(w):
    ws, _ = agent_ws(w)
    good = envelope("g-1", "t-g", text="fine", ts=TS0)

    def bad(connector, body, status, code, field=None, headers=None,
            method="POST"):
        st, js = w.post(connector, body, headers=headers, method=method)
        what = "%s %s %s" % (method, connector,
                             (body if isinstance(body, bytes)
                              else json.dumps(body))[:80])
        check_eq(st, status, "status of " + what)
        check(isinstance(js, dict) and js.get("ok") is False
              and isinstance(js.get("error"), dict),
              "%s: body is not {ok:false,error}" % what, js)
        err = js["error"]
        check_eq(err.get("code"), code, "error.code of " + what)
        check(isinstance(err.get("message"), str) and err["message"],
              "%s: error.message missing" % what, js)
        if field is not None:
            check_eq(err.get("field"), field, "error.field of " + what)
            check(field in err["message"],
                  "%s: message does not name the field" % what, js)
        return err

    bad("api1", b'{"external_id": "x", "thread": ', 400, "invalid_json")
    bad("api1", b"", 400, "invalid_json")
    b = dict(good)
    del b["thread"]
    err = bad("api1", b, 400, "invalid_envelope", "thread")
    check("missing" in err["message"], "missing thread: message", err)
    bad("api1", dict(good, ts="abc"), 400, "invalid_envelope", "ts")
    bad("api1", dict(good, contact={"external_id": "c", "name": "N",
                                    "email": "a" * 309 + "@example.com"}),
        400, "invalid_envelope", "contact.email")
    bad("api1", dict(good, contact={"external_id": "c"}), 400,
        "invalid_envelope", "contact.name")
    raw = json.dumps(dict(good, text="XXXX")).encode()
    raw = raw.replace(b"XXXX", b"ab\xff\xfecd")
    bad("api1", raw, 400, "invalid_envelope", "text")
    bad("api1", dict(good, connector="sec1"), 400, "invalid_envelope",
        "connector")
    bad("api1", dict(good, channel="email"), 400, "invalid_envelope",
        "channel")
    bad("api1", dict(good, v=2), 400, "invalid_envelope", "v")
    bad("api1", dict(good, kind="bogus"), 400, "invalid_envelope", "kind")
    bad("api1", dict(good, external_id=""), 400, "invalid_envelope",
        "external_id")
    bad("api1", dict(good, text="x" * 5000), 413, "too_large")
    bad("nope", good, 404, "unknown_connector")
    bad("api1", None, 405, "method_not_allowed", method="GET")
    bad("sec1", good, 401, "unauthorized")
    bad("sec1", good, 401, "unauthorized",
        headers={"Authorization": "Bearer wrong"})
    bad("sec1", good, 401, "unauthorized",
        headers={"Authorization": "Bearer s3cret2"})
    js = w.post_ok("sec1", good, headers={"Authorization": "Bearer s3cret"})

    m = wait_msg(ws, "g-1")
    check_eq(m["data"]["message"]["connector"], "sec1", "good message")
    ws.drain(quiet=0.5)
    check_eq(len(ws.find_events("message.created")), 1,
             "message.created events")
    feed = ws.call("feed")
    check_eq([c["connector"] for c in feed["conversations"]], ["sec1"],
             "connectors of the feed")
    check_eq(len(w.conversations("all")), 1, "conversations in the store")
    check_eq(w.redis("XLEN", "inbox:in"), 1, "entries in inbox:in")
    check_eq(w.redis("XLEN", "inbox:dead"), 0, "entries in inbox:dead")
    w.assert_running()


# --------------------------------------------------------------------------
# 8

def test_redis_outage(w):
    ws, token = agent_ws(w)
    w.post_ok("api1", envelope("m-1", "t-1", ts=TS0))
    wait_msg(ws, "m-1")
    last_seq = ws.events[-1]["seq"]
    body = envelope("m-2", "t-1", text="during the outage", ts=TS0 + 1)

    w.stop_redis()
    t0 = time.monotonic()
    st, js = w.post("api1", body, timeout=30)
    took = time.monotonic() - t0
    check_eq(st, 503, "status while Redis is down")
    check(isinstance(js, dict) and js.get("ok") is False
          and js.get("error", {}).get("code") == "redis_unavailable",
          "body while Redis is down", js)
    check(took < 10, "the 503 took %.1fs" % took)
    st2, _ = w.post("api1", body, timeout=30)
    check_eq(st2, 503, "status of a second try while Redis is down")

    w.start_redis()
    attempts = []

    def retry():
        st, js = w.post("api1", body, timeout=30)
        attempts.append(st)
        return st == 202
    wait_for(retry, 15, "a retried POST to succeed after Redis restarted",
             interval=0.2)
    log("retry statuses after Redis came back: %s" % attempts)
    check(all(s in (202, 503) for s in attempts), "unexpected status",
          attempts)

    try:
        m = wait_msg(ws, "m-2", timeout=20)
    except WsClosed as e:
        log("NOTE: the gateway closed the socket during the outage (%s); "
            "reconnecting and resubscribing" % e)
        ws = w.ws_connect(token)
        ws.call("subscribe", since=last_seq)
        m = wait_msg(ws, "m-2", timeout=20)
    check_eq(m["data"]["message"]["text"], "during the outage", "text")
    g = get_conv(ws, m["data"]["conversation_id"])
    check_eq(ext_ids(g["messages"]), ["m-1", "m-2"], "stored messages")
    w.assert_running()


# --------------------------------------------------------------------------
# 9

def test_dead_letters(w):
    ws, _ = agent_ws(w)
    ids = {}
    ids["incomplete"] = w.redis_cli("XADD", "inbox:in", "*", "env",
                                    '{"v":1}')
    ids["not json"] = w.redis_cli("XADD", "inbox:in", "*", "env", "not json")
    ids["no env"] = w.redis_cli("XADD", "inbox:in", "*", "foo", "bar")
    valid = {"v": 1, "connector": "api1", "channel": "api", "kind": "message",
             "external_id": "d-ok", "ts": TS0,
             "contact": {"external_id": "c-d", "name": "Dee"},
             "thread": "t-d", "text": "valid after the bad ones"}
    ids["version"] = w.redis_cli("XADD", "inbox:in", "*", "env",
                                 json.dumps(dict(valid, v=2,
                                                 external_id="d-v2")))
    for k, v in ids.items():
        check(STREAM_ID.match(v), "XADD %s returned %r" % (k, v))
    ok_id = w.redis_cli("XADD", "inbox:in", "*", "env", json.dumps(valid))
    check(STREAM_ID.match(ok_id), "XADD returned %r" % ok_id)

    m = wait_msg(ws, "d-ok", timeout=10)
    check_eq(m["data"]["message"]["text"], "valid after the bad ones", "text")

    def acked():
        p = w.redis("XPENDING", "inbox:in", "router")
        return p[0] == 0
    wait_for(acked, 10, "XPENDING inbox:in router to reach 0")

    dead = stream_entries(w.redis_raw("XRANGE", "inbox:dead", "-", "+"))
    by_src = {f.get("source_id"): f for _, f in dead}
    log("inbox:dead: %s" % json.dumps(dead))
    check_eq(len(dead), 4, "entries in inbox:dead")
    for what, sid in ids.items():
        f = by_src.get(sid)
        check(f is not None, "no dead letter for the %s entry %s"
              % (what, sid), dead)
        check_eq(f.get("source"), "inbox:in", "dead %s source" % what)
        check(isinstance(f.get("reason"), str) and f["reason"],
              "dead %s has no reason" % what, f)
        check("data" in f, "dead %s has no data" % what, f)
    r = by_src[ids["incomplete"]]["reason"]
    check("missing" in r, "reason for {\"v\":1} should say a field is "
          "missing: %r" % r)
    r = by_src[ids["not json"]]["reason"].lower()
    check("json" in r, "reason for 'not json' should name JSON: %r" % r)
    check("not json" in by_src[ids["not json"]]["data"],
          "dead letter data should carry the raw entry",
          by_src[ids["not json"]])
    r = by_src[ids["no env"]]["reason"]
    check("env" in r, "reason for an entry without env should name it: %r"
          % r)
    check_eq(json.loads(by_src[ids["no env"]]["data"]), {"foo": "bar"},
             "dead letter data of an entry without env (its fields)")
    r = by_src[ids["version"]]["reason"]
    check(re.search(r"\bv\b|version", r), "reason for v:2 should name the "
          "version: %r" % r)
    ws.drain(quiet=0.5)
    check_eq([e["data"]["message"]["external_id"]
              for e in ws.find_events("message.created")], ["d-ok"],
             "messages announced")
    check_eq(len(w.conversations("all")), 1, "conversations stored")
    w.assert_running()


# --------------------------------------------------------------------------
# 10

def test_feed_paging_and_errors(w):
    ws, _ = agent_ws(w)
    n = 7
    cid = {}
    for i in range(n):
        w.post_ok("api1", envelope("f-%d" % i, "t-%d" % i, ts=TS0 + i * 1000))
        cid[i] = wait_msg(ws, "f-%d" % i)["data"]["conversation_id"]
    check_eq(len(set(cid.values())), n, "distinct conversations")

    pages = []
    fields = {"state": "open", "limit": 3}
    for _ in range(10):
        d = ws.call("feed", **fields)
        pages.append(d)
        if d["next"] is None:
            break
        check(d["next"] is not None, "next")
        fields["before"] = d["next"]
    sizes = [len(p["conversations"]) for p in pages]
    check_eq(sizes, [3, 3, 1], "page sizes with limit 3")
    check(pages[0]["next"] is not None and pages[1]["next"] is not None,
          "first pages must carry a cursor", pages)
    listed = [c for p in pages for c in p["conversations"]]
    got = [c["id"] for c in listed]
    check_eq(sorted(got), sorted(cid.values()),
             "conversations listed by the paged feed")
    check_eq(len(set(got)), n, "distinct conversations in the paged feed")
    upd = [c["updated"] for c in listed]
    check(upd == sorted(upd, reverse=True), "updated not descending", upd)
    # Threads were created one after the other (each waited for), so the
    # feed lists them newest first; only equal `updated` values may tie.
    order = {cid[i]: i for i in range(n)}
    for a, b in zip(listed, listed[1:]):
        check(order[a["id"]] > order[b["id"]] or a["updated"] == b["updated"],
              "feed order is not newest first", got)
    check_eq(ws.call("feed", state="open", limit=500)["conversations"],
             [c for p in pages for c in p["conversations"]],
             "one big page vs the paged feed")
    d = ws.call("feed")
    check_eq(len(d["conversations"]), n, "feed with default limit")
    check(d["next"] is None, "default-limit feed should end", d)

    # A new message moves its conversation to the top.
    w.post_ok("api1", envelope("f-late", "t-0", ts=TS0 + 100000))
    wait_msg(ws, "f-late")
    top = ws.call("feed", limit=1)
    check_eq([c["id"] for c in top["conversations"]], [cid[0]],
             "top of the feed after a new message on t-0")
    check_eq(top["conversations"][0].get("message_count"), 2,
             "message_count of t-0")
    d = ws.call("feed", state="closed")
    check_eq((d.get("conversations"), d.get("next")), ([], None),
             "closed feed (conversations, next)")

    check_error(ws.request("conversation.get", id=999999), "not_found",
                "conversation.get of an unknown id")
    check_error(ws.request("conversation.get"), "bad_request",
                "conversation.get without id")
    check_error(ws.request("feed", limit=0), "bad_request", "feed limit 0")
    check_error(ws.request("feed", limit=501), "bad_request",
                "feed limit 501")
    check_error(ws.request("feed", state="bogus"), "bad_request",
                "feed state bogus")
    check_error(ws.request("frobnicate"), "unknown_type", "unknown type")

    ws.send_text("{this is not json")
    ws.wait_until(lambda: ws.orphan_results, 5,
                  "a result for an unparsable frame")
    check_error(ws.orphan_results[0], "bad_request", "unparsable frame")
    ws.send_text('["type", "ping"]')
    ws.wait_until(lambda: len(ws.orphan_results) > 1, 5,
                  "a result for a frame that is not an object")
    check_error(ws.orphan_results[1], "bad_request", "array frame")
    # The socket survives bad requests.
    check(isinstance(ws.call("ping").get("now"), int), "ping after errors")


# --------------------------------------------------------------------------
# 11

def test_subscribe_replays_missed(w):
    ws, token = agent_ws(w)
    w.post_ok("api1", envelope("r-1", "t-1", ts=TS0))
    w.post_ok("api1", envelope("r-2", "t-1", ts=TS0 + 1))
    wait_msg(ws, "r-1")
    wait_msg(ws, "r-2")
    ws.drain(quiet=0.3)
    seen = [e["seq"] for e in ws.events]
    check(len(seen) >= 3, "expected conversation.created and two "
          "message.created", ws.events)
    last = seen[-1]
    ws.close()

    w.post_ok("api1", envelope("r-3", "t-1", ts=TS0 + 2))
    w.post_ok("api1", envelope("r-4", "t-2", ts=TS0 + 3))
    w.post_ok("api1", envelope("r-5", "t-2", ts=TS0 + 4))

    def missed_events():
        ev = w.events_tail(last, timeout=1)
        return ev if any(e.get("event") == "message.created" and
                         e["data"]["message"]["external_id"] == "r-5"
                         for e in ev) else None
    # Presence events (alice's sockets closing and opening) come and go
    # with timing; the replay is checked on everything else.
    missed = [e for e in wait_for(missed_events, 20,
                                  "inboxctl events tail to show r-5")
              if not e.get("event", "").startswith("agent.presence")]
    check_eq([e["data"]["message"]["external_id"] for e in missed
              if e.get("event") == "message.created"], ["r-3", "r-4", "r-5"],
             "messages after %s per inboxctl" % last)
    check_eq([e["data"]["conversation"]["thread"] for e in missed
              if e.get("event") == "conversation.created"], ["t-2"],
             "conversations created after %s per inboxctl" % last)

    ws2 = w.ws_connect(token)
    r = ws2.call("subscribe", since=last)
    replay_all = list(ws2.events)
    replay = [e for e in replay_all
              if not e.get("event", "").startswith("agent.presence")]
    check_eq([e["seq"] for e in replay], [e["seq"] for e in missed],
             "seqs replayed after %s" % last)
    check_eq([e["event"] for e in replay], [e["event"] for e in missed],
             "events replayed")
    check_eq([e["data"] for e in replay], [e["data"] for e in missed],
             "data of the replayed events vs inboxctl")
    # (presence events may come live rather than replayed)
    check(len(replay) <= r.get("replayed", -1) <= len(replay_all),
          "subscribe result replayed", r, replay_all)
    check(seq_key(r.get("last")) >= seq_key(replay[-1]["seq"]),
          "subscribe result last", r, replay)
    check(all(seq_key(e["seq"]) > seq_key(last) for e in replay),
          "replayed an event already seen")

    # Live events continue after the replay, once each.
    w.post_ok("api1", envelope("r-6", "t-1", ts=TS0 + 5))
    wait_msg(ws2, "r-6")
    ws2.drain(quiet=0.5)
    seqs = [seq_key(e["seq"]) for e in ws2.events]
    check(seqs == sorted(seqs) and len(seqs) == len(set(seqs)),
          "seqs on the resubscribed socket not strictly increasing",
          [e["seq"] for e in ws2.events])
    check_eq([e["data"]["message"]["external_id"]
              for e in ws2.find_events("message.created")],
             ["r-3", "r-4", "r-5", "r-6"], "messages on the socket")
    seqs = [e["seq"] for e in ws2.events]

    # Subscribing at the newest seq replays nothing.
    ws3 = w.ws_connect(token)
    r3 = ws3.call("subscribe", since=seqs[-1])
    check_eq(r3.get("replayed"), 0, "replayed since the newest seq")
    check_eq([e for e in ws3.events if e.get("event", "").startswith(
        ("message.", "conversation."))], [],
        "events pushed since the newest seq")
    check_error(ws3.request("subscribe", since="not-a-seq"), "bad_request",
                "subscribe with a bad since")


# --------------------------------------------------------------------------

TESTS = {
    "post_reaches_websocket": (test_post_reaches_websocket, None),
    "thread_joins_conversation": (test_thread_joins_conversation, None),
    "duplicate_external_id": (test_duplicate_external_id, None),
    "everything_survives_sigkill": (test_everything_survives_sigkill, None),
    "router_sigkill_mid_stream": (test_router_sigkill_mid_stream, None),
    "auth_refusals": (test_auth_refusals, None),
    "malformed_posts": (test_malformed_posts,
                        {"webhooks": {"max_body": 4096}}),
    "redis_outage": (test_redis_outage, None),
    "dead_letters": (test_dead_letters, None),
    "feed_paging_and_errors": (test_feed_paging_and_errors, None),
    "subscribe_replays_missed": (test_subscribe_replays_missed, None),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        if len(sys.argv) == 2 and sys.argv[1] == "--list":
            print("\n".join(TESTS))
            sys.exit(0)
        print("usage: %s TEST_ID\n  %s" % (sys.argv[0],
                                           "\n  ".join(TESTS)))
        sys.exit(99)
    func, conf = TESTS[sys.argv[1]]
    run_test(sys.argv[1], func, conf_extra=conf)


if __name__ == "__main__":
    main()
