#!/usr/bin/env python3
"""inboxd integration tests of the inbox itself: dialog lifecycle, tags,
notes, tasks, templates, replies, contacts and feeds, through real websocket
clients, the real router and a real redis-server.

Usage: inbox_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error.
"""

import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    Redis, RedisError, TestFailure, check, check_eq, envelope, log, run_test,
    stream_entries, wait_for)

PW = "correct horse battery staple"
CONTACTS_CONF = {"contacts": {"fields": "company, plan"}}


def now_ms():
    return int(time.time() * 1000)


def agent(w, login, role="agent"):
    w.add_agent(login, PW, name=login.title(), role=role)
    ws = w.ws_connect(w.token(login, PW))
    ws.call("ping")
    return ws


def new_conv(w, ws, ext, thread, **kw):
    """Posts a message on a new thread; returns the conversation."""
    w.post_ok("api1", envelope(ext, thread, **kw))
    e = ws.wait_event("conversation.created",
                      lambda e: e["data"]["conversation"]["thread"] == thread)
    return e["data"]["conversation"]


def sv(v):
    return v.decode() if isinstance(v, bytes) else v


def pipeline(w, commands, chunk=500):
    """Sends commands to Redis pipelined, chunk at a time."""
    r = Redis(w.redis_port)
    try:
        for i in range(0, len(commands), chunk):
            part = commands[i:i + chunk]
            out = []
            for args in part:
                out.append(b"*%d\r\n" % len(args))
                for a in args:
                    a = a.encode() if isinstance(a, str) else a
                    out.append(b"$%d\r\n%s\r\n" % (len(a), a))
            r.sock.sendall(b"".join(out))
            for _ in part:
                rep = r._reply()
                if isinstance(rep, RedisError):
                    raise TestFailure("redis: %s" % rep)
    finally:
        r.close()


def refused(ws, verb, code, **fields):
    r = ws.request(verb, **fields)
    check(r.get("ok") is False, "%s %s should fail with %s" % (verb, fields,
                                                               code), r)
    check_eq(r["error"].get("code"), code, "%s error code" % verb)
    check(r["error"].get("message"), "%s error has no message" % verb, r)
    return r


def feed_ids(ws, **q):
    out, fields = [], dict(q)
    for _ in range(100):
        d = ws.call("feed", **fields)
        out += [c["id"] for c in d["conversations"]]
        if d["next"] is None:
            return out
        fields["before"] = d["next"]
    raise TestFailure("feed never ends")


# --------------------------------------------------------------------------

def test_lifecycle(w):
    ws = agent(w, "alice")
    conv = new_conv(w, ws, "m-1", "t-1", text="first")
    cid = conv["id"]
    d = ws.call("conversation.close", id=cid)
    check_eq(d["event"], "conversation.updated", "close answer event")
    check_eq(d["conversation"]["state"], "closed", "state after close")
    check_eq(d["change"], "closed", "change")
    check(d["conversation"]["closed_at"], "closed_at not set", d)
    refused(ws, "conversation.close", "illegal_transition", id=cid)
    refused(ws, "conversation.snooze", "illegal_transition", id=cid,
            until=now_ms() + 60000)
    check(cid not in feed_ids(ws, state="open"), "closed dialog in open feed")
    check(cid in feed_ids(ws, state="closed"), "closed dialog not in closed")

    # A customer message reopens it with its whole history.
    w.post_ok("api1", envelope("m-2", "t-1", text="again"))
    e = ws.wait_event("conversation.updated",
                      lambda e: e["data"]["conversation"]["id"] == cid and
                      e["data"].get("reopened") is True)
    check_eq(e["data"]["change"], "reopened", "change on customer reopen")
    check_eq(e["data"]["conversation"]["state"], "open", "reopened state")
    check_eq(e["data"]["conversation"]["reopen_count"], 1, "reopen_count")
    g = ws.call("conversation.get", id=cid)
    check_eq([m["external_id"] for m in g["messages"]], ["m-1", "m-2"],
             "history kept across close/reopen")
    refused(ws, "conversation.reopen", "illegal_transition", id=cid)

    # Snooze: bad times, then a real one that wakes by its timer.
    refused(ws, "conversation.snooze", "bad_request", id=cid,
            until=now_ms() - 1000)
    refused(ws, "conversation.snooze", "bad_request", id=cid)
    ws.call("conversation.assign", id=cid, assignee="alice")
    until = now_ms() + 1500
    d = ws.call("conversation.snooze", id=cid, until=until)
    check_eq(d["conversation"]["state"], "snoozed", "state after snooze")
    check_eq(d["conversation"]["snooze_until"], until, "snooze_until")
    check(cid in feed_ids(ws, state="snoozed"), "not in snoozed feed")
    check(cid not in feed_ids(ws, state="open"), "snoozed in open feed")
    n = ws.wait_event("conversation.unsnoozed",
                      lambda e: e["data"]["conversation_id"] == cid,
                      timeout=10)
    check(now_ms() >= until, "woke before its time")
    check_eq(n["data"]["why"], "timer", "unsnoozed why")
    check_eq(n["data"]["assignee"], "alice", "unsnoozed notice goes to the "
             "assignee")
    check(cid in feed_ids(ws, state="open"), "woken dialog not in open feed")

    # Snooze again; the customer writes: it opens at once.
    ws.call("conversation.snooze", id=cid, until=now_ms() + 3600000)
    mark = len(ws.events)
    w.post_ok("api1", envelope("m-3", "t-1", text="hello?"))
    n = ws.wait_event("conversation.unsnoozed",
                      lambda e: e["data"]["conversation_id"] == cid,
                      start=mark)
    check_eq(n["data"]["why"], "customer_message", "unsnooze why")
    # An agent reopens a snoozed dialog himself: no notice.
    ws.call("conversation.snooze", id=cid, until=now_ms() + 3600000)
    mark = len(ws.events)
    d = ws.call("conversation.reopen", id=cid)
    check_eq(d["conversation"]["state"], "open", "reopen of snoozed")
    ws.drain(0.5)
    check(not ws.find_events("conversation.unsnoozed", start=mark),
          "an agent's own reopen sent an unsnoozed notice")
    refused(ws, "conversation.close", "not_found", id=999999)
    refused(ws, "conversation.close", "bad_request", id="x")


def test_snooze_timer_survives_restart(w):
    ws = agent(w, "alice")
    conv = new_conv(w, ws, "m-1", "t-1")
    ws.call("conversation.assign", id=conv["id"], assignee="alice")
    until = now_ms() + 2000
    ws.call("conversation.snooze", id=conv["id"], until=until)
    w.kill("router")
    time.sleep(max(0, (until - now_ms()) / 1000.0) + 1.0)
    w.start("router")
    n = ws.wait_event("conversation.unsnoozed",
                      lambda e: e["data"]["conversation_id"] == conv["id"],
                      timeout=15)
    check_eq(n["data"]["why"], "timer", "why")
    g = ws.call("conversation.get", id=conv["id"])
    check_eq(g["conversation"]["state"], "open", "state after restart")


def test_tags_fields_and_feed_filters(w):
    ws = agent(w, "alice")
    agent(w, "bob").close()
    a = new_conv(w, ws, "m-a", "t-a", text="Payment failed twice",
                 contact={"external_id": "ca", "name": "Ann",
                          "email": "ann@example.com"})
    b = new_conv(w, ws, "m-b", "t-b", text="Where is my parcel",
                 subject="Delivery")
    c = new_conv(w, ws, "m-c", "t-c", text="nothing special")
    d = ws.call("conversation.tag", id=a["id"],
                add=["#Payment", "ОПЛАТА", "payment", " VIP "])
    check_eq(d["conversation"]["tags"], ["payment", "vip", "оплата"],
             "tags normalized, deduplicated and sorted")
    ws.call("conversation.tag", id=b["id"], add=["#payment"])
    r = refused(ws, "conversation.tag", "bad_request", id=c["id"],
                add=["two words"])
    check("add[0]" in r["error"]["message"], "tag error names the item", r)
    check_eq(ws.call("tags")["tags"], ["payment", "vip", "оплата"],
             "tag registry")

    check_eq(sorted(feed_ids(ws, tag="#PAYMENT")), sorted([a["id"], b["id"]]),
             "feed by tag, case-insensitive")
    check_eq(feed_ids(ws, tag="Оплата"), [a["id"]], "feed by Cyrillic tag")
    ws.call("conversation.tag", id=b["id"], remove=["PAYMENT"])
    check_eq(feed_ids(ws, tag="payment"), [a["id"]], "untagged dialog left "
             "the tag feed")

    ws.call("conversation.set", id=a["id"], priority="urgent",
            nature="complaint", subject="Card payment",
            outcome="refund promised")
    g = ws.call("conversation.get", id=a["id"])["conversation"]
    check_eq((g["priority"], g["nature"], g["subject"], g["outcome"]),
             ("urgent", "complaint", "Card payment", "refund promised"),
             "set fields")
    refused(ws, "conversation.set", "bad_request", id=a["id"],
            priority="asap")
    refused(ws, "conversation.set", "bad_request", id=a["id"], nature="rant")
    check_eq(feed_ids(ws, priority="urgent"), [a["id"]], "feed by priority")

    ws.call("conversation.assign", id=a["id"], assignee="alice")
    ws.call("conversation.assign", id=b["id"], assignee="bob")
    refused(ws, "conversation.assign", "not_found", id=c["id"],
            assignee="nobody")
    check_eq(feed_ids(ws, assignee="me"), [a["id"]], "assignee me")
    check_eq(feed_ids(ws, assignee="bob"), [b["id"]], "assignee bob")
    check_eq(feed_ids(ws, assignee="none"), [c["id"]], "unassigned")
    check_eq(sorted(feed_ids(ws, assignee="any")),
             sorted([a["id"], b["id"], c["id"]]), "any assignee")
    check_eq(feed_ids(ws, text="PARCEL"), [b["id"]], "text in last message")
    check_eq(feed_ids(ws, text="card pay"), [a["id"]], "text in subject")
    check_eq(feed_ids(ws, contact=a["contact"]["id"]), [a["id"]],
             "feed by contact")
    check_eq(feed_ids(ws, channel="api", tag="vip", assignee="me"),
             [a["id"]], "combined filters")
    check_eq(feed_ids(ws, channel="telegram"), [], "other channel")
    refused(ws, "feed", "bad_request", tag="")
    refused(ws, "feed", "bad_request", assignee="Not A Login")
    refused(ws, "feed", "bad_request", priority="asap")
    refused(ws, "feed", "bad_request", channel="fax")
    # Newest activity first.
    w.post_ok("api1", envelope("m-c2", "t-c"))
    ws.wait_event("message.created",
                  lambda e: e["data"]["message"]["external_id"] == "m-c2")
    check_eq(feed_ids(ws)[0], c["id"], "newest activity first")


def test_notes_mentions_tasks(w):
    alice = agent(w, "alice")
    bob = agent(w, "bob")
    conv = new_conv(w, alice, "m-1", "t-1")
    cid = conv["id"]
    alice.call("conversation.assign", id=cid, assignee="alice")
    bob_mark = len(bob.events)
    d = alice.call("note.add", id=cid,
                   text="@bob can you check? mail ann@example.com, @nobody")
    check_eq(d["event"], "note.created", "note answer")
    note = d["message"]
    check_eq(note["direction"], "note", "note direction")
    check_eq(note["author"], "alice", "note author")
    m = bob.wait_event("mention", lambda e: e["data"]["conversation_id"] ==
                       cid, start=bob_mark)
    check_eq(m["data"]["agent"], "bob", "mention target")
    check_eq(m["data"]["by"], "alice", "mention by")
    check_eq(m["data"]["note_id"], note["id"], "mention note id")
    alice.drain(0.5)
    check(not alice.find_events("mention"), "alice got bob's mention")
    g = alice.call("conversation.get", id=cid)
    check_eq(g["conversation"]["assignee"], "alice",
             "a mention does not transfer the dialog")
    check_eq([n["text"] for n in g["notes"]],
             ["@bob can you check? mail ann@example.com, @nobody"], "notes")
    check(all(m_["direction"] != "note" for m_ in g["messages"]),
          "notes listed among messages", g)
    refused(alice, "note.add", "bad_request", id=cid, text="")

    msg_id = g["messages"][0]["id"]
    due = now_ms() + 1500
    bob_mark = len(bob.events)
    d = alice.call("task.create", id=cid, message_id=msg_id,
                   title="Call the customer back", assignee="bob", due=due)
    check_eq(d["event"], "task.created", "task answer")
    task = d["task"]
    check_eq((task["assignee"], task["message_id"], task["due"],
              task["done"]), ("bob", msg_id, due, False), "task fields")
    bob.wait_event("task.created", lambda e: e["data"]["task"]["id"] ==
                   task["id"], start=bob_mark)
    bob.wait_event("task.due", lambda e: e["data"]["task"]["id"] ==
                   task["id"], timeout=10)
    check(now_ms() >= due, "task.due before its time")
    alice.drain(0.5)
    check(not alice.find_events("task.due"), "task.due went to alice")
    d = bob.call("task.update", task_id=task["id"], done=True)
    check_eq(d["task"]["done"], True, "task done")
    carol = agent(w, "carol")
    refused(carol, "task.update", "forbidden", task_id=task["id"], done=False)
    refused(alice, "task.create", "not_found", id=cid, message_id=999999,
            title="x")
    refused(alice, "task.update", "not_found", task_id=424242, done=True)
    g = alice.call("conversation.get", id=cid)
    check_eq([(t["title"], t["done"]) for t in g["tasks"]],
             [("Call the customer back", True)], "tasks in conversation.get")


def test_templates_replies_and_status(w):
    sup = agent(w, "sue", role="supervisor")
    ws = agent(w, "alice")
    conv = new_conv(w, ws, "m-1", "t-1",
                    contact={"external_id": "c-1", "name": "Ann"})
    cid = conv["id"]
    refused(ws, "template.put", "forbidden", name="hi", text="Hi")
    refused(sup, "template.put", "bad_request", name="bad",
            text="Hi {contact.nam}")
    sup.call("template.put", name="hello",
             text="Hello {contact.name}, this is {agent.name}. {{ok}}")
    check_eq([t["name"] for t in ws.call("templates")["templates"]],
             ["hello"], "templates list")
    d = ws.call("message.send", id=cid, template="hello")
    check_eq(d["event"], "message.created", "reply answer")
    msg = d["message"]
    check_eq(msg["text"], "Hello Ann, this is Alice. {ok}", "rendered text")
    check_eq((msg["direction"], msg["status"], msg["author"]),
             ("out", "queued", "alice"), "reply fields")
    refused(ws, "message.send", "not_found", id=cid, template="nope")
    refused(ws, "message.send", "bad_request", id=cid, text="")

    out = stream_entries(w.redis("XRANGE", "inbox:out:api1", "-", "+"))
    check_eq(len(out), 1, "one item queued for the connector")
    item = json.loads(out[0][1]["out"])
    check_eq((item["text"], item["thread"], item["contact"]["external_id"],
              item["ref"], item["message_id"]),
             ("Hello Ann, this is Alice. {ok}", "t-1", "c-1",
              "out:%d" % msg["id"], msg["id"]), "out item")
    g = ws.call("conversation.get", id=cid)["conversation"]
    check_eq(g["assignee"], "alice", "a reply takes an unassigned dialog")
    check(g["first_response_at"], "first_response_at not set", g)

    # The connector reports delivery.
    w.post_ok("api1", {"kind": "status", "external_id": "st-1",
                       "thread": "t-1", "contact": {"external_id": "c-1",
                                                    "name": ""},
                       "text": "", "status": "sent",
                       "reply_to": "out:%d" % msg["id"],
                       "channel_message_id": "wamid.X1"})
    e = ws.wait_event("message.status", lambda e: e["data"]["message_id"] ==
                      msg["id"])
    check_eq(e["data"]["status"], "sent", "status sent")
    w.post_ok("api1", {"kind": "status", "external_id": "st-2",
                       "thread": "t-1", "contact": {"external_id": "c-1",
                                                    "name": ""},
                       "text": "", "status": "delivered",
                       "reply_to": "wamid.X1"})
    ws.wait_event("message.status", lambda e: e["data"]["status"] ==
                  "delivered")
    # A late "sent" (or a repeat) does not move it back.
    w.post_ok("api1", {"kind": "status", "external_id": "st-3",
                       "thread": "t-1", "contact": {"external_id": "c-1",
                                                    "name": ""},
                       "text": "", "status": "sent",
                       "reply_to": "out:%d" % msg["id"]})
    w.post_ok("api1", {"kind": "status", "external_id": "st-bad",
                       "thread": "t-1", "contact": {"external_id": "c-1",
                                                    "name": ""},
                       "text": "", "status": "read", "reply_to": "out:99999"})
    wait_for(lambda: any("out:99999" in json.dumps(f) for _, f in
                         stream_entries(w.redis("XRANGE", "inbox:dead", "-",
                                                "+"))),
             10, "status for an unknown reply dead-lettered")
    ms = [m for m in ws.call("conversation.get", id=cid)["messages"]
          if m["direction"] == "out"]
    check_eq(ms[0]["status"], "delivered", "status never moves back")
    sup.call("template.delete", name="hello")
    refused(sup, "template.delete", "not_found", name="hello")


def test_permissions(w):
    alice = agent(w, "alice")
    bob = agent(w, "bob")
    sue = agent(w, "sue", role="supervisor")
    conv = new_conv(w, alice, "m-1", "t-1")
    cid = conv["id"]
    alice.call("conversation.assign", id=cid, assignee="alice")
    refused(bob, "conversation.close", "forbidden", id=cid)
    refused(bob, "message.send", "forbidden", id=cid, text="hi")
    refused(bob, "conversation.assign", "forbidden", id=cid, assignee="bob")
    bob.call("note.add", id=cid, text="a colleague may always add a note")
    bob.call("conversation.tag", id=cid, add=["seen-by-bob"])
    refused(bob, "contact.merge", "forbidden", into=1, **{"from": 2})
    sue.call("conversation.close", id=cid)
    refused(alice, "unknown.verb", "unknown_type")
    # agent.* verbs are not offered over the websocket.
    refused(sue, "agent.add", "unknown_type", login="x")


def test_contacts_link_and_merge(w):
    sue = agent(w, "sue", role="supervisor")
    a = new_conv(w, sue, "m-1", "t-1", contact={
        "external_id": "tg-1", "name": "Ann", "email": "Ann@Example.com"})
    # The same person writes from another source with the same address.
    w.post_ok("sec1", envelope("m-2", "t-2", contact={
        "external_id": "x-77", "name": "", "email": "ann@example.COM",
        "phone": "+1 555 010 2030"}),
        headers={"Authorization": "Bearer s3cret"})
    b = sue.wait_event("conversation.created", lambda e: e["data"][
        "conversation"]["thread"] == "t-2")["data"]["conversation"]
    check_eq(b["contact"]["id"], a["contact"]["id"], "linked by e-mail")
    # A third source, matched by phone only.
    c = new_conv(w, sue, "m-3", "t-3", contact={
        "external_id": "wa-9", "name": "A.", "phone": "15550102030"})
    check_eq(c["contact"]["id"], a["contact"]["id"], "linked by phone")
    hist = sue.call("contact.get", id=a["contact"]["id"])
    check_eq(sorted(x["id"] for x in hist["conversations"]),
             sorted([a["id"], b["id"], c["id"]]), "history across channels")
    check_eq(hist["contact"]["phone"], "+1 555 010 2030",
             "missing phone filled from the linked channel")

    d = new_conv(w, sue, "m-4", "t-4", contact={
        "external_id": "vk-5", "name": "Anna K"})
    check(d["contact"]["id"] != a["contact"]["id"], "unrelated contact "
          "linked")
    r = sue.call("contact.merge", into=a["contact"]["id"],
                 **{"from": d["contact"]["id"]})
    check_eq(r["event"], "contact.merged", "merge answer")
    hist = sue.call("contact.get", id=a["contact"]["id"])
    check(d["id"] in [x["id"] for x in hist["conversations"]],
          "merged contact's dialogs not moved", hist)
    check_eq(feed_ids(sue, contact=d["contact"]["id"]), [],
             "merged-away contact still owns dialogs in the feed")
    # A later message from the merged contact lands on the survivor.
    w.post_ok("api1", envelope("m-5", "t-5", contact={
        "external_id": "vk-5", "name": "Anna K"}))
    e = sue.wait_event("conversation.created", lambda e: e["data"][
        "conversation"]["thread"] == "t-5")
    check_eq(e["data"]["conversation"]["contact"]["id"], a["contact"]["id"],
             "merged contact resolves to the survivor")
    u = sue.call("contact.update", contact_id=a["contact"]["id"],
                 fields={"company": "ACME", "plan": "gold"})
    check_eq(u["contact"]["fields"], {"company": "ACME", "plan": "gold"},
             "custom fields")
    refused(sue, "contact.update", "bad_request",
            contact_id=a["contact"]["id"], fields={"shoe_size": "42"})
    refused(sue, "contact.merge", "not_found", into=a["contact"]["id"],
            **{"from": 9999})


def test_kill_router_mid_commands(w):
    """10,000 envelopes and 1,000 commands; SIGKILL the router twice while
    it works; every message and every change is there exactly once."""
    N, CONVS, CMDS = 10000, 200, 1000
    w.add_agent("alice", PW)
    rnd = random.Random(7)
    # Envelopes straight into inbox:in (the router is under test here).
    batch = []
    for i in range(N):
        env = {"v": 1, "connector": "api1", "channel": "api",
               "kind": "message", "external_id": "m-%d" % i,
               "ts": 1790000000000 + i, "thread": "t-%d" % (i % CONVS),
               "contact": {"external_id": "c-%d" % (i % CONVS),
                           "name": "C%d" % (i % CONVS)},
               "text": "message %d" % i}
        batch.append(("XADD", "inbox:in", "*", "env", json.dumps(env)))
    cmds = []
    for j in range(CMDS):
        conv_id = 1 + (j % CONVS)
        kind = j % 3
        if kind == 0:
            cmd = {"type": "note.add", "id": conv_id, "text": "note %d" % j}
        elif kind == 1:
            cmd = {"type": "conversation.tag", "id": conv_id,
                   "add": ["t%d" % (j % 7)]}
        else:
            cmd = {"type": "conversation.set", "id": conv_id,
                   "outcome": "outcome %d" % j}
        cmd.update({"v": 1, "cmd_id": "k-%d" % j})
        cmds.append(cmd)
    # First all envelopes of the first conversations exist, then mix.
    pipeline(w, batch[:CONVS])
    wait_for(lambda: len(w.conversations("open")) == CONVS, 60,
             "first conversations")
    rest = batch[CONVS:]
    mixed = []
    step = max(1, len(rest) // CMDS)
    for j, cmd in enumerate(cmds):
        mixed.extend(rest[j * step:(j + 1) * step])
        mixed.append(("XADD", "inbox:cmd", "*", "cmd", json.dumps(cmd)))
    mixed.extend(rest[CMDS * step:])
    half = len(mixed) // 2
    pipeline(w, mixed[:half])
    time.sleep(0.3)
    w.kill("router")
    w.start("router")
    pipeline(w, mixed[half:])
    time.sleep(0.5)
    w.kill("router")
    w.start("router")

    def settled():
        for stream in ("inbox:in", "inbox:cmd"):
            pend = w.redis("XPENDING", stream, "router")
            if int(pend[0]) != 0:
                return False
            top = w.redis("XREVRANGE", stream, "+", "-", "COUNT", "1")
            groups = w.redis("XINFO", "GROUPS", stream)
            g = dict(zip([sv(x) for x in groups[0][0::2]],
                         groups[0][1::2]))
            if sv(g["last-delivered-id"]) != sv(top[0][0]):
                return False
        return True
    wait_for(settled, 180, "router caught up", interval=0.5)
    check_eq(int(w.redis("XLEN", "inbox:in")), N, "envelopes in the stream")
    events = stream_entries(w.redis("XRANGE", "inbox:events", "-", "+"))
    ext = [json.loads(f["data"])["message"]["external_id"]
           for _, f in events if f["event"] == "message.created"]
    check_eq(len(ext), N, "message.created events")
    check_eq(len(set(ext)), N, "each message announced exactly once")
    answers = {}
    for _, f in events:
        if f.get("cmd_id", "").startswith("k-"):
            answers[f["cmd_id"]] = answers.get(f["cmd_id"], 0) + 1
    failed = [f for _, f in events if f["event"] == "command.failed"]
    check_eq(failed, [], "no command failed")
    check_eq(sorted(answers), sorted(c["cmd_id"] for c in cmds),
             "every command answered")
    check_eq(sorted(set(answers.values())), [1],
             "every command answered exactly once")
    # A socket opened now (one idle through the flood falls behind the
    # gateway's ring and is closed, by design).
    ws = w.ws_connect(w.token("alice", PW))
    convs = w.conversations("all")
    check_eq(sum(c["message_count"] for c in convs), N,
             "stored messages (message_count) exactly once")
    notes = 0
    for conv_id in range(1, CONVS + 1):
        g = ws.call("conversation.get", id=conv_id)
        check_eq(len(g["messages"]), N // CONVS,
                 "messages of conversation %d" % conv_id)
        notes += len(g["notes"])
    check_eq(notes, len([c for c in cmds if c["type"] == "note.add"]),
             "notes exactly once")
    for conv_id in range(1, 8):
        g = ws.call("conversation.get", id=conv_id)["conversation"]
        want = sorted({"t%d" % (j % 7) for j in range(CMDS)
                       if j % 3 == 1 and 1 + (j % CONVS) == conv_id})
        check_eq(g["tags"], want, "tags of conversation %d" % conv_id)
    # Every entry delivered again (as after a crash between the commit and
    # the XACK): nothing may change, no event may be appended.
    top = w.redis("XREVRANGE", "inbox:events", "+", "-", "COUNT", "1")
    w.redis("XGROUP", "SETID", "inbox:in", "router", "0")
    w.redis("XGROUP", "SETID", "inbox:cmd", "router", "0")
    wait_for(settled, 180, "router re-read everything", interval=0.5)
    check_eq(w.redis("XREVRANGE", "inbox:events", "+", "-", "COUNT", "1"),
             top, "events after every entry was delivered again")
    check_eq(sum(len(ws.call("conversation.get", id=i)["notes"])
                 for i in range(1, CONVS + 1)), notes,
             "notes after every command was delivered again")
    log("killed the router twice; %d messages, %d commands, all once" %
        (N, CMDS))


TESTS = {
    "lifecycle": (test_lifecycle, None),
    "snooze_timer_survives_restart": (test_snooze_timer_survives_restart,
                                      None),
    "tags_fields_and_feed_filters": (test_tags_fields_and_feed_filters,
                                     None),
    "notes_mentions_tasks": (test_notes_mentions_tasks, None),
    "templates_replies_and_status": (test_templates_replies_and_status,
                                     None),
    "permissions": (test_permissions, None),
    "contacts_link_and_merge": (test_contacts_link_and_merge, CONTACTS_CONF),
    "kill_router_mid_commands": (test_kill_router_mid_commands, None),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        if len(sys.argv) == 2 and sys.argv[1] == "--list":
            print("\n".join(TESTS))
            sys.exit(0)
        print("usage: %s TEST_ID\n  %s" % (sys.argv[0], "\n  ".join(TESTS)))
        sys.exit(99)
    func, conf = TESTS[sys.argv[1]]
    run_test(sys.argv[1], func, conf_extra=conf)


if __name__ == "__main__":
    main()
