#!/usr/bin/env python3
"""inboxd integration tests of routing and SLA: dialogs go to online agents
with room and the right skills, wait in the unassigned queue when nobody
can take them and move the moment someone can; SLA warnings and breaches
reach inbox:sla and the websocket once each, also across a router restart,
and a reply clears them. Real redis-server, router, gateway and webhooks.

Usage: route_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    check, check_eq, envelope, log, run_test, stream_entries, wait_for)
from inbox_tests import pipeline  # noqa: E402

PW = "correct horse battery staple"


def now_ms():
    return int(time.time() * 1000)


def sv(v):
    return v.decode() if isinstance(v, bytes) else v


def online(w, login):
    ws = w.ws_connect(w.token(login, PW))
    ws.call("ping")
    return ws


def command(w, cmd):
    """Sends an operator command straight to inbox:cmd, as inboxctl does,
    and waits for its answering event."""
    cmd = dict(cmd, v=1, cmd_id="t-%d-%s" % (now_ms(), cmd["type"]))
    top = w.redis("XREVRANGE", "inbox:events", "+", "-", "COUNT", "1")
    last = sv(top[0][0]) if top else "0-0"
    w.redis("XADD", "inbox:cmd", "*", "cmd", json.dumps(cmd))
    deadline = time.time() + 10
    while time.time() < deadline:
        r = w.redis("XREAD", "COUNT", "100", "BLOCK", "500", "STREAMS",
                    "inbox:events", last)
        for sid, f in stream_entries(r[0][1] if r else []):
            last = sid
            d = json.loads(f.get("data", "{}"))
            if cmd["cmd_id"] in (f.get("cmd_id"), d.get("cmd_id")):
                check(f["event"] != "command.failed", "command refused",
                      cmd, d)
                return d
    raise AssertionError("no answer to %r" % cmd)


def get(ws, cid):
    return ws.call("conversation.get", id=cid)["conversation"]


def post_new(w, ws, ext, thread, **kw):
    w.post_ok("api1", envelope(ext, thread, **kw))
    e = ws.wait_event("conversation.created",
                      lambda e: e["data"]["conversation"]["thread"] == thread,
                      timeout=10)
    return e["data"]["conversation"]


ROUTING = {"router": {"auto_assign": 1, "default_capacity": 2,
                      "presence_lease_ms": 60000}}


def test_routing_presence_skills_and_queue(w):
    for login in ("ann", "bob", "sue"):
        w.add_agent(login, PW, role="supervisor" if login == "sue" else
                    "agent")
    command(w, {"type": "agent.update", "login": "ann",
                "skills": ["#Billing"], "capacity": 3})
    d = command(w, {"type": "agent.update", "login": "bob", "skills": []})
    check_eq(d["capacity"], None, "bob keeps the default capacity")
    # nobody online: a new dialog waits unassigned
    sue = online(w, "sue")
    command(w, {"type": "agent.update", "login": "sue", "capacity": 0})
    c0 = post_new(w, sue, "m-0", "t-0")
    check_eq(c0["assignee"], None, "nobody online: unassigned")

    # bob comes online: the queue drains into him
    bob = online(w, "bob")
    n = bob.wait_event("conversation.assigned",
                       lambda e: e["data"]["conversation_id"] == c0["id"],
                       timeout=10)
    check_eq(n["data"]["assignee"], "bob", "queued dialog to bob")
    sue.wait_event("agent.presence", lambda e: e["data"]["login"] == "bob"
                   and e["data"]["presence"] == "online")
    # bob's capacity is 2: the second goes to him, the third waits
    c1 = post_new(w, sue, "m-1", "t-1")
    check_eq(c1["assignee"], "bob", "second dialog to bob")
    c2 = post_new(w, sue, "m-2", "t-2")
    check_eq(c2["assignee"], None, "bob is full: the third waits")
    # a #billing dialog in the queue is not bob's to take
    sue.call("conversation.tag", id=c2["id"], add=["billing"])
    bob.call("conversation.close", id=c1["id"])
    time.sleep(0.5)
    check_eq(get(sue, c2["id"])["assignee"], None,
             "#billing never goes to bob, who lacks the skill")
    c3 = post_new(w, sue, "m-3", "t-3")
    check_eq(c3["assignee"], "bob", "bob took the untagged one")

    # ann (billing) comes online: the #billing dialog goes to her
    ann = online(w, "ann")
    n = ann.wait_event("conversation.assigned",
                       lambda e: e["data"]["conversation_id"] == c2["id"],
                       timeout=10)
    check_eq(get(sue, c2["id"])["assignee"], "ann", "billing to ann")
    # load and presence are visible in the store's view of agents
    # ann goes offline: new dialogs no longer reach her
    ann.close()
    sue.wait_event("agent.presence", lambda e: e["data"]["login"] == "ann"
                   and e["data"]["presence"] == "offline", timeout=10)
    c4 = post_new(w, sue, "m-4", "t-4")
    check_eq(c4["assignee"], None, "ann offline, bob full: waits")
    # a customer writing again to bob's closed dialog reopens it to bob
    bob.call("conversation.close", id=c3["id"])
    n = bob.wait_event("conversation.assigned",
                       lambda e: e["data"]["conversation_id"] == c4["id"],
                       timeout=10)
    w.post_ok("api1", envelope("m-1b", "t-1"))
    e = sue.wait_event("conversation.updated",
                       lambda e: e["data"]["conversation"]["id"] == c1["id"]
                       and e["data"].get("reopened"), timeout=10)
    check_eq(e["data"]["conversation"]["assignee"], None,
             "reopened while its agent is full: to the queue")
    bob.call("conversation.close", id=c0["id"])
    bob.wait_event("conversation.assigned",
                   lambda e: e["data"]["conversation_id"] == c1["id"],
                   timeout=10)
    check_eq(get(sue, c1["id"])["assignee"], "bob", "back to bob")
    # and it all survives a router restart: nothing assigned twice
    w.kill("router")
    w.start("router")
    c5 = post_new(w, sue, "m-5", "t-5")
    check_eq(c5["assignee"], None, "bob still full after restart")
    feed = sue.call("feed", state="open", assignee="bob")["conversations"]
    check_eq(sorted(c["id"] for c in feed), sorted([c1["id"], c4["id"]]),
             "bob's open dialogs")


SLA = {"router": {"auto_assign": 0, "sla_warning_pct": 50},
       "sla fast": {"first_response": "4s", "next_response": "4s",
                    "resolution": "1h", "priority": "urgent, high, normal"}}


def sla_entries(w):
    r = w.redis("XRANGE", "inbox:sla", "-", "+")
    return [(f["event"], json.loads(f["data"]))
            for _, f in stream_entries(r)]


def test_sla_warning_and_breach_once_and_reply_clears(w):
    # SLA alerts reach supervisors (and the dialog's own agent)
    w.add_agent("ann", PW, role="supervisor")
    ann = online(w, "ann")
    t0 = now_ms()
    a = post_new(w, ann, "m-a", "t-a")
    check_eq(a["sla"]["policy"], "fast", "policy by priority")
    check(abs(a["sla"]["due_first_response"] - (t0 + 4000)) < 1500,
          "first response due in 4 s", a["sla"])
    b = post_new(w, ann, "m-b", "t-b")
    ann.call("conversation.assign", id=b["id"], assignee="ann")
    ann.call("message.send", id=b["id"], text="On it")
    warn = ann.wait_event("sla.warning", lambda e:
                          e["data"]["conversation_id"] == a["id"], timeout=10)
    check_eq(warn["data"]["timer"], "first_response", "warning timer")
    check(warn["data"]["overdue_ms"] < 0, "warning before due", warn)
    br = ann.wait_event("sla.breached", lambda e:
                        e["data"]["conversation_id"] == a["id"], timeout=10)
    check(br["data"]["overdue_ms"] >= 0, "breach after due", br)
    time.sleep(2.5)
    got = [(n, d["conversation_id"], d["timer"]) for n, d in sla_entries(w)]
    check_eq(got, [("sla.warning", a["id"], "first_response"),
                   ("sla.breached", a["id"], "first_response")],
             "inbox:sla: one warning and one breach, none for the "
             "answered dialog")
    check(get(ann, a["id"])["sla"]["breached"], "conversation says breached")
    # the customer writes again after the reply: next response runs
    w.post_ok("api1", envelope("m-b2", "t-b"))
    ann.wait_event("sla.warning", lambda e:
                   e["data"]["conversation_id"] == b["id"]
                   and e["data"]["timer"] == "next_response", timeout=10)
    ann.call("message.send", id=b["id"], text="Done")
    time.sleep(3.5)
    got = [(n, d["conversation_id"], d["timer"]) for n, d in sla_entries(w)
           if d["conversation_id"] == b["id"]]
    check_eq(got, [("sla.warning", b["id"], "next_response")],
             "the reply cleared the next-response breach")
    # closing stops the resolution timer
    ann.call("conversation.close", id=a["id"])
    check(get(ann, a["id"])["sla"]["due_resolution"] is None,
          "closed: no resolution due")


def test_sla_breach_fires_once_after_router_downtime(w):
    w.add_agent("ann", PW, role="supervisor")
    ann = online(w, "ann")
    a = post_new(w, ann, "m-a", "t-a")
    w.kill("router")
    time.sleep(5.0)          # past the warning and the breach
    w.start("router")
    br = ann.wait_event("sla.breached", lambda e:
                        e["data"]["conversation_id"] == a["id"], timeout=15)
    check(br["data"]["overdue_ms"] >= 500, "late breach says how late", br)
    w.kill("router")
    w.start("router")
    time.sleep(1.5)
    got = [(n, d["conversation_id"]) for n, d in sla_entries(w)]
    check_eq(got, [("sla.breached", a["id"])],
             "exactly one alert: the breach (a stale warning is not sent), "
             "not repeated by the second restart")


FAILOVER = {"router": {"auto_assign": 1, "default_capacity": 100000,
                       "lease_ms": 2000, "batch": 64}}


def all_events(w):
    out, last = [], "-"
    while True:
        r = w.redis("XRANGE", "inbox:events", last, "+", "COUNT", "5000")
        ents = stream_entries(r)
        if last != "-":
            ents = ents[1:]
        if not ents:
            return out
        out.extend(ents)
        last = ents[-1][0]


def test_failover_kill_active_router_mid_burst(w):
    """Two routers, one active: SIGKILL it amid 3,000 envelopes; the
    standby takes over within seconds and every message is stored and
    announced once, every dialog created and assigned once."""
    N, CONVS = 3000, 300
    conf2 = w.conf_path + ".router2"
    with open(w.conf_path) as f:
        text = f.read()
    with open(conf2, "w") as f:
        f.write(text.replace("consumer = router-1", "consumer = router-2"))
    w.start("router2", conf=conf2)
    with open(w.procs["router2"].logpath) as f:
        check("standby" in f.read(), "router2 is a standby")
    for login in ("ann", "bob"):
        w.add_agent(login, PW)
    socks = [online(w, "ann"), online(w, "bob")]
    batch = []
    for i in range(N):
        env = {"v": 1, "connector": "api1", "channel": "api",
               "kind": "message", "external_id": "m-%d" % i,
               "ts": 1790000000000 + i, "thread": "t-%d" % (i % CONVS),
               "contact": {"external_id": "c-%d" % (i % CONVS),
                           "name": "C%d" % (i % CONVS)},
               "text": "message %d" % i}
        batch.append(("XADD", "inbox:in", "*", "env", json.dumps(env)))
    pipeline(w, batch)
    wait_for(lambda: int(w.redis("XLEN", "inbox:events")) > 600, 30,
             "the active router at work")
    w.kill("router")
    t_kill = time.time()
    log("SIGKILL of the active router at %s events"
        % w.redis("XLEN", "inbox:events"))

    def took_over():
        with open(w.procs["router2"].logpath) as f:
            return "took over" in f.read()
    wait_for(took_over, 15, "router2 takes over")
    log("router2 took over after %.1fs" % (time.time() - t_kill))

    def created():
        return sum(1 for _, f in all_events(w)
                   if f.get("event") == "message.created")
    wait_for(lambda: created() >= N, 60, "every message announced")
    time.sleep(1.0)
    evs = all_events(w)
    msgs, convs, assigned = {}, {}, {}
    for _, f in evs:
        d = json.loads(f.get("data", "{}"))
        if f["event"] == "message.created":
            ext = d["message"]["external_id"]
            msgs[ext] = msgs.get(ext, 0) + 1
        elif f["event"] == "conversation.created":
            t = d["conversation"]["thread"]
            convs[t] = convs.get(t, 0) + 1
        elif f["event"] == "conversation.assigned":
            c = d["conversation_id"]
            assigned[c] = assigned.get(c, 0) + 1
    check_eq(len(msgs), N, "messages announced")
    check_eq([k for k, v in msgs.items() if v != 1], [],
             "messages announced more than once")
    check_eq(len(convs), CONVS, "conversations created")
    check_eq([k for k, v in convs.items() if v != 1], [],
             "conversations created more than once")
    check_eq(len(assigned), CONVS, "conversations assigned")
    check_eq([k for k, v in assigned.items() if v != 1], [],
             "conversations assigned more than once")
    stored = w.conversations("all")
    check_eq(len(stored), CONVS, "conversations stored")
    check_eq(sum(c["message_count"] for c in stored), N, "messages stored")
    check_eq(sorted(set(c["assignee"] for c in stored)), ["ann", "bob"],
             "both agents got dialogs")
    pend = w.redis("XPENDING", "inbox:in", "router")
    check_eq(int(pend[0]), 0, "nothing left pending")
    # the old router comes back: it stands by, the store is not written
    # by two
    w.start("router")
    with open(w.procs["router"].logpath) as f:
        check("standby" in f.read(), "the restarted router stands by")
    for s in socks:
        s.close()


RULES = {"router": {"auto_assign": 1},
         "contacts": {"fields": "plan"},
         "rule billing": {"keyword": "оплата, refund", "tags": "billing",
                          "priority": "high"},
         "rule vip": {"contact_field": "plan=gold", "assign": "team:vip",
                      "tags": "vip"},
         "rule welcome": {"first_contact": "yes", "auto_reply": "welcome"},
         "rule telegram-only": {"channel": "telegram", "tags": "tg",
                                "stop": "yes"},
         "sla std": {"first_response": "1h"}}


def out_items(w):
    return [json.loads(f["out"]) for _, f in
            stream_entries(w.redis("XRANGE", "inbox:out:api1", "-", "+"))]


def test_rules_tag_prioritize_assign_and_auto_reply_once(w):
    for login in ("ann", "bob", "sue"):
        w.add_agent(login, PW, role="supervisor" if login == "sue" else
                    "agent")
    command(w, {"type": "agent.update", "login": "ann", "teams": "vip"})
    command(w, {"type": "agent.update", "login": "sue", "capacity": 0})
    sue = online(w, "sue")
    sue.call("template.put", name="welcome",
             text="Hello {contact.name}, we got #{conversation.id}")
    bob = online(w, "bob")
    # a keyword in Cyrillic, any case: tag and priority; first contact:
    # the welcome auto-reply, rendered
    c = post_new(w, sue, "m-1", "t-1", text="Где моя ОПЛАТА?",
                 contact={"external_id": "c-1", "name": "Анна"})
    check_eq(c["tags"], ["billing"], "rule billing tagged")
    check_eq(c["priority"], "high", "rule billing set the priority")
    ev = sue.find_events("conversation.created",
                         lambda e: e["data"]["conversation"]["id"] ==
                         c["id"])[0]
    check_eq(ev["data"]["rules"], ["billing", "welcome"], "matched rules")
    wait_for(lambda: len(out_items(w)) == 1, 10, "the auto-reply queued")
    item = out_items(w)[0]
    check_eq(item["text"], "Hello Анна, we got #%d" % c["id"],
             "auto-reply rendered")
    check_eq(item.get("kind"), "auto_reply", "marked as an auto-reply")
    check(item.get("auto") is True, "marked automatic for the channel", item)
    # the customer writes again: no second auto-reply
    w.post_ok("api1", envelope("m-2", "t-1", text="hello?"))
    sue.wait_event("message.created", lambda e:
                   e["data"]["message"].get("external_id") == "m-2")
    time.sleep(0.5)
    check_eq(len(out_items(w)), 1, "one auto-reply per dialog and period")
    # an auto-responder on the other side: no auto-reply, no SLA
    a = post_new(w, sue, "m-3", "t-3", text="Where is my order?")
    sue.call("message.send", id=a["id"], text="Looking into it")
    w.post_ok("api1", envelope("m-3b", "t-3", text="I am out of office",
                               auto=True))
    sue.wait_event("message.created", lambda e:
                   e["data"]["message"].get("external_id") == "m-3b")
    time.sleep(0.5)
    check_eq([i.get("kind") for i in out_items(w)],
             ["auto_reply", "auto_reply", None],
             "no auto-reply to an automatic message")
    g = sue.call("conversation.get", id=a["id"])["conversation"]
    check(g["sla"]["due_next_response"] is None,
          "no SLA timer for an automatic message", g)
    # an automatic message opens no dialog by itself: it is dead-lettered
    w.post_ok("api1", envelope("m-bounce", "t-bounce", auto=True,
                               text="Delivery failed"))
    wait_for(lambda: any("opens no dialog" in f.get("reason", "") or
                         "no open dialog" in f.get("reason", "")
                         for _, f in stream_entries(
                             w.redis("XRANGE", "inbox:dead", "-", "+"))),
             10, "the bounce recorded in inbox:dead")
    check(not any(c["thread"] == "t-bounce" for c in w.conversations()),
          "no dialog for the bounce")
    # a gold customer (custom field) goes to the vip team: ann
    command(w, {"type": "contact.upsert", "email": "gold@example.com",
                "name": "Gold", "fields": {"plan": "gold"}})
    ann = online(w, "ann")
    g = post_new(w, sue, "m-4", "t-4", text="hi",
                 contact={"external_id": "c-gold", "name": "Gold",
                          "email": "GOLD@example.com"})
    check_eq(g["assignee"], "ann", "team:vip rule assigned to ann")
    check_eq(g["tags"], ["vip"], "vip tag")
    # an ordinary dialog is routed by load between bob and ann
    o = post_new(w, sue, "m-5", "t-5", text="plain")
    check(o["assignee"] in ("bob", "ann"), "routed", o)
    # inboxctl shows the rules and dry-runs a message through them
    lst = json.loads(w.inboxctl("rules", "list", "--json").stdout)
    check_eq([r["name"] for r in lst],
             ["billing", "vip", "welcome", "telegram-only"], "rules list")

    def dry(*args):
        out = json.loads(w.inboxctl("rules", "test", "--json",
                                    *args).stdout)
        return [r["name"] for r in out["matched"]]
    check_eq(dry("--text", "REFUND please"), ["billing"], "dry run")
    check_eq(dry("--text", "refund", "--first"), ["billing", "welcome"],
             "dry run, first contact")
    check_eq(dry("--channel", "telegram", "--text", "x"), ["telegram-only"],
             "dry run by channel")
    check_eq(dry("--text", "x", "--fields", '{"plan":"gold"}'), ["vip"],
             "dry run by a custom field")
    bad = w.inboxctl("rules", "test", "--fields", "[1]", check_rc=False)
    check_eq(bad.returncode, 2, "a bad --fields is a usage error")
    ann.close()
    bob.close()


SURVEY = {"router": {"survey_template": "survey"}}


def test_survey_after_close_records_the_rating(w):
    w.add_agent("sue", PW, role="supervisor")
    sue = online(w, "sue")
    sue.call("template.put", name="survey",
             text="How did we do, {contact.name}? Reply 1 to 5.")
    c = post_new(w, sue, "m-1", "t-1")
    sue.call("message.send", id=c["id"], text="Fixed")
    r = sue.call("conversation.close", id=c["id"])
    check_eq(r["conversation"]["state"], "closed", "close answered by its "
             "own event")
    items = out_items(w)
    check_eq([i.get("kind") for i in items], [None, "survey"],
             "the reply, then the survey")
    check(items[1]["text"].startswith("How did we do"), "survey text", items)
    # the customer answers with a rating: recorded, the dialog stays closed
    w.post_ok("api1", envelope("m-2", "t-1", text=" 4 "))
    e = sue.wait_event("conversation.updated",
                       lambda e: e["data"]["conversation"]["id"] == c["id"]
                       and e["data"].get("change") == "rated", timeout=10)
    check_eq(e["data"]["conversation"]["state"], "closed", "still closed")
    check_eq(e["data"]["conversation"]["rating"], 4, "rating")
    # anything else reopens it as usual, and the next close asks again
    w.post_ok("api1", envelope("m-3", "t-1", text="one more thing"))
    sue.wait_event("conversation.updated",
                   lambda e: e["data"]["conversation"]["id"] == c["id"]
                   and e["data"].get("reopened"), timeout=10)
    sue.call("conversation.close", id=c["id"])
    check_eq([i.get("kind") for i in out_items(w)],
             [None, "survey", "survey"], "a survey per close")
    # a rating after a reopen keeps the first one: only one per survey
    g = sue.call("conversation.get", id=c["id"])["conversation"]
    check_eq(g["rating"], 4, "rating kept")


TESTS = {
    "routing_presence_skills_and_queue":
        (test_routing_presence_skills_and_queue, ROUTING),
    "sla_warning_and_breach_once_and_reply_clears":
        (test_sla_warning_and_breach_once_and_reply_clears, SLA),
    "sla_breach_fires_once_after_router_downtime":
        (test_sla_breach_fires_once_after_router_downtime, SLA),
    "failover_kill_active_router_mid_burst":
        (test_failover_kill_active_router_mid_burst, FAILOVER),
    "rules_tag_prioritize_assign_and_auto_reply_once":
        (test_rules_tag_prioritize_assign_and_auto_reply_once, RULES),
    "survey_after_close_records_the_rating":
        (test_survey_after_close_records_the_rating, SURVEY),
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
