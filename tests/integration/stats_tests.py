#!/usr/bin/env python3
"""inboxd integration tests of the supervisors' tools: `inboxctl sla tail`
follows inbox:sla (replay and live, JSON and for people, stops cleanly on
SIGTERM); `inboxctl agent set` / `agent list` change and show agents'
profiles, presence and load; the websocket verbs `stats`, `agents` and
`sla.recent` answer supervisors and admins only, and `inboxctl stats`
agrees with `stats`. Real redis-server, router, gateway and webhooks.

Usage: stats_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error.
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    check, check_eq, envelope, log, run_test, stream_entries, wait_for)

PW = "correct horse battery staple"


def now_ms():
    return int(time.time() * 1000)


def online(w, login):
    ws = w.ws_connect(w.token(login, PW))
    ws.call("ping")
    return ws


def post_new(w, ws, ext, thread, **extra):
    w.post_ok("api1", envelope(ext, thread, **extra))
    e = ws.wait_event("conversation.created",
                      lambda e: e["data"]["conversation"]["thread"] == thread,
                      timeout=10)
    return e["data"]["conversation"]


def get(ws, cid):
    return ws.call("conversation.get", id=cid)["conversation"]


def out(cp):
    return cp.stdout.decode("utf-8")


def err(cp):
    return cp.stderr.decode("utf-8", "replace")


def json_lines(cp):
    lines = [ln for ln in out(cp).splitlines() if ln.strip()]
    try:
        return [json.loads(ln) for ln in lines]
    except ValueError:
        raise AssertionError("a line is not JSON: %r" % out(cp))


def ctl_popen(w, *args):
    return subprocess.Popen([w.exe["inboxctl"], "-c", w.conf_path]
                            + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=w.tmp)


def forbidden(ws, verb, **fields):
    r = ws.request(verb, **fields)
    check(r.get("ok") is False, "%s answered an agent" % verb, r)
    check_eq(r["error"]["code"], "forbidden", "%s error code" % verb)


SLA = {"router": {"auto_assign": 0, "sla_warning_pct": 50},
       "sla fast": {"first_response": "3s", "resolution": "1h",
                    "priority": "urgent, high, normal"}}


def test_sla_tail_replays_and_follows_alerts(w):
    w.add_agent("ann", PW)
    w.add_agent("sue", PW, role="supervisor")
    ann = online(w, "ann")
    sue = online(w, "sue")
    # a live tail started before anything happens prints only new alerts
    live = ctl_popen(w, "sla", "tail", "--count", "2", "--timeout", "40")
    idle = ctl_popen(w, "sla", "tail")
    time.sleep(1.0)
    a = post_new(w, ann, "m-a", "t-a", subject="Refund \"now\"")
    ann.call("conversation.assign", id=a["id"], assignee="ann")
    ann.wait_event("sla.breached",
                   lambda e: e["data"]["conversation_id"] == a["id"],
                   timeout=15)

    cp = w.inboxctl("sla", "tail", "--json", "--since", "all", "--count",
                    "2", "--timeout", "20", timeout=60)
    got = json_lines(cp)
    check_eq([(g["event"], g["data"]["conversation_id"], g["data"]["timer"])
              for g in got],
             [("sla.warning", a["id"], "first_response"),
              ("sla.breached", a["id"], "first_response")],
             "sla tail --json --since all --count 2")
    check(got[0]["data"]["overdue_ms"] < 0 <= got[1]["data"]["overdue_ms"],
          "warning before due, breach after", got)
    check_eq(got[1]["data"]["assignee"], "ann", "breach names the assignee")
    ids = [sid for sid, _ in stream_entries(
        w.redis("XRANGE", "inbox:sla", "-", "+"))]
    check_eq([g["seq"] for g in got], ids, "seq is the stream id")

    # --since ID: after that entry; --since DURATION: from that long ago
    cp = w.inboxctl("sla", "tail", "--json", "--since", ids[0], "--timeout",
                    "1")
    check_eq([g["event"] for g in json_lines(cp)], ["sla.breached"],
             "--since the warning's id")
    cp = w.inboxctl("sla", "tail", "--json", "--since", "1h", "--timeout",
                    "1")
    check_eq(len(json_lines(cp)), 2, "--since 1h replays both")

    # for people: one line per alert
    cp = w.inboxctl("sla", "tail", "--since", "all", "--timeout", "1")
    lines = out(cp).splitlines()
    check_eq(len(lines), 2, "two human lines: %r" % lines)
    check(" WARNING " in lines[0] and "due in " in lines[0],
          "the warning line", lines[0])
    for part in ("BREACHED", "first_response", "#%d " % a["id"],
                 "(normal)", " ann ", "policy=fast", "overdue ",
                 '"Refund "now""'):
        check(part in lines[1], "breach line lacks %r" % part, lines[1])

    try:
        o, e = live.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        live.kill()
        raise AssertionError("the live sla tail did not stop at --count 2")
    check_eq(live.returncode, 0, "live tail exit status")
    check("BREACHED" in o.decode() and "#%d " % a["id"] in o.decode(),
          "live tail printed the breach", o, e)
    check_eq(len(o.decode().splitlines()), 2, "live tail: two lines")

    # SIGTERM ends a tail cleanly
    idle.send_signal(signal.SIGTERM)
    try:
        o, e = idle.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        idle.kill()
        raise AssertionError("sla tail ignored SIGTERM")
    check_eq(idle.returncode, 0, "exit status after SIGTERM (%r)" % e)
    check_eq(len(o.decode().splitlines()), 2, "idle tail saw both alerts")

    # the websocket's recent alerts: supervisors only, newest first
    forbidden(ann, "sla.recent")
    rec = sue.call("sla.recent")
    check_eq([(x["seq"], x["event"]) for x in rec["alerts"]],
             [(ids[1], "sla.breached"), (ids[0], "sla.warning")],
             "sla.recent newest first")
    check_eq(rec["alerts"][0]["data"]["conversation_id"], a["id"],
             "sla.recent data")
    rec = sue.call("sla.recent", since=ids[0])
    check_eq([x["seq"] for x in rec["alerts"]], [ids[1]],
             "sla.recent since the warning")
    r = sue.request("sla.recent", since="yesterday")
    check_eq(r["error"]["code"], "bad_request", "a bad since")
    for args in (["sla", "tail", "--since", "yesterday"],
                 ["sla", "tail", "--count", "x"], ["sla", "follow"]):
        cp = w.inboxctl(*args, check_rc=False)
        check_eq(cp.returncode, 2, "exit status of inboxctl %s" % args)


AGENTS = {"router": {"auto_assign": 0, "default_capacity": 3,
                     "presence_lease_ms": 60000}}


def agent_list(w):
    return {a["login"]: a for a in
            json.loads(out(w.inboxctl("agent", "list", "--json")))}


def test_agent_set_and_list(w):
    w.add_agent("ann", PW, name="Ann Smith")
    w.add_agent("sue", PW, role="supervisor")
    got = agent_list(w)
    check_eq(sorted(got), ["ann", "sue"], "agents listed")
    check_eq((got["ann"]["capacity"], got["ann"]["effective_capacity"],
              got["ann"]["presence"], got["ann"]["skills"]),
             (None, 3, "offline", None), "ann before any change")

    cp = w.inboxctl("agent", "set", "ann", "--skills", "#Billing, vip",
                    "--teams", "support, tier 2", "--capacity", "4")
    check(out(cp).startswith("agent.updated: "), "agent set prints the "
          "answer", out(cp))
    ann = online(w, "ann")
    sue = online(w, "sue")
    c = post_new(w, sue, "m-1", "t-1")
    sue.call("conversation.assign", id=c["id"], assignee="ann")
    wait_for(lambda: agent_list(w)["ann"]["presence"] == "online", 10,
             "ann online while her socket is open")
    a = agent_list(w)["ann"]
    check_eq((a["name"], a["skills"], a["teams"], a["capacity"],
              a["effective_capacity"], a["load"], a["role"]),
             ("Ann Smith", "billing, vip", "support, tier 2", 4, 4, 1,
              "agent"), "ann after agent set")
    text = out(w.inboxctl("agent", "list"))
    row = [ln for ln in text.splitlines() if ln.startswith("ann ")]
    check(len(row) == 1 and "online" in row[0] and " 4 " in row[0]
          and "billing, vip" in row[0], "human row of ann", text)
    check(any(ln.startswith("sue ") and "default 3" in ln
              for ln in text.splitlines()), "sue has the default", text)

    # the websocket's list is the same, for supervisors only
    forbidden(ann, "agents")
    ws_agents = {x["login"]: x for x in sue.call("agents")["agents"]}
    check_eq(ws_agents["ann"], a, "agents verb = agent list --json")

    w.inboxctl("agent", "set", "ann", "--capacity", "default", "--name",
               "Ann S.")
    a = agent_list(w)["ann"]
    check_eq((a["capacity"], a["effective_capacity"], a["name"],
              a["skills"]), (None, 3, "Ann S.", "billing, vip"),
             "back to the default capacity, skills kept")
    ann.close()
    wait_for(lambda: agent_list(w)["ann"]["presence"] == "offline", 10,
             "ann offline once her socket closed")

    cp = w.inboxctl("agent", "set", "ghost", "--capacity", "1",
                    check_rc=False)
    check_eq(cp.returncode, 1, "exit status for an unknown agent")
    check("refused: not_found" in err(cp), "reason", err(cp))
    for args in (["agent", "set", "ann"],
                 ["agent", "set", "ann", "--capacity", "lots"],
                 ["agent", "set", "--capacity", "2"],
                 ["agent", "list", "extra"]):
        cp = w.inboxctl(*args, check_rc=False)
        check_eq(cp.returncode, 2, "exit status of inboxctl %s" % args)


STATS = {"router": {"auto_assign": 0, "sla_warning_pct": 50},
         "sla fast": {"first_response": "6s", "resolution": "1h",
                      "priority": "urgent, high, normal"}}


def test_stats_verb_and_inboxctl_agree(w):
    t0 = now_ms()
    w.add_agent("ann", PW)
    w.add_agent("bob", PW)
    w.add_agent("sue", PW, role="supervisor")
    w.add_agent("root", PW, role="admin")
    w.inboxctl("agent", "set", "ann", "--teams", "support")
    w.inboxctl("agent", "set", "bob", "--teams", "support, billing")
    ann, bob, sue = online(w, "ann"), online(w, "bob"), online(w, "sue")
    c1 = post_new(w, sue, "m-1", "t-1")
    c2 = post_new(w, sue, "m-2", "t-2")
    c3 = post_new(w, sue, "m-3", "t-3")
    c4 = post_new(w, sue, "m-4", "t-4")
    sue.call("conversation.assign", id=c1["id"], assignee="ann")
    sue.call("conversation.assign", id=c2["id"], assignee="bob")
    sue.call("conversation.assign", id=c3["id"], assignee="bob")
    ann.call("message.send", id=c1["id"], text="Hello")
    ann.call("conversation.close", id=c1["id"])
    bob.call("message.send", id=c2["id"], text="Looking")
    # the operator answers c4, which stays unassigned (an agent's reply
    # would take it)
    w.inboxctl("cmd", "message.send",
               json.dumps({"id": c4["id"], "text": "From the operator"}))
    # c3 is bob's and unanswered: its first response breaches
    sue.wait_event("sla.breached",
                   lambda e: e["data"]["conversation_id"] == c3["id"],
                   timeout=20)
    time.sleep(0.5)
    g1, g2, g4 = get(sue, c1["id"]), get(sue, c2["id"]), get(sue, c4["id"])
    frt1 = g1["first_response_at"] - g1["created"]
    frt2 = g2["first_response_at"] - g2["created"]
    res1 = g1["closed_at"] - g1["created"]
    check(g4["first_response_at"] is not None and g4["assignee"] is None,
          "c4 answered, unassigned", g4)
    log("first responses %d ms and %d ms, resolution %d ms"
        % (frt1, frt2, res1))

    frm, to = t0 - 1000, now_ms() + 1000
    st = sue.call("stats", **{"from": frm, "to": to})
    check_eq((st["from"], st["to"]), (frm, to), "the period")
    ag = {x["login"]: x for x in st["agents"]}
    tm = {x["team"]: x for x in st["teams"]}
    check_eq(sorted(ag), ["ann", "bob", "root", "sue"], "every agent")

    def fig(x):
        return (x["handled"], x["closed"], x["first_responses"],
                x["first_response_median_ms"], x["first_response_p90_ms"],
                x["resolution_median_ms"], x["open_load"],
                x["sla_breaches"])
    check_eq(fig(ag["ann"]), (1, 1, 1, frt1, frt1, res1, 0, 0), "ann")
    check_eq(fig(ag["bob"]), (1, 0, 1, frt2, frt2, None, 2, 1), "bob")
    check_eq(fig(ag["sue"]), (0, 0, 0, None, None, None, 0, 0), "sue")
    check_eq(ag["bob"]["teams"], ["support", "billing"], "bob's teams")
    check_eq(fig(tm["support"]),
             (2, 1, 2, min(frt1, frt2), max(frt1, frt2), res1, 2, 1),
             "support = ann + bob")
    check_eq(fig(tm["billing"]), (1, 0, 1, frt2, frt2, None, 2, 1),
             "billing = bob")
    check_eq(tm["support"]["agents"], 2, "support has two agents")
    tot = st["totals"]
    check_eq((tot["handled"], tot["closed"], tot["first_responses"],
              tot["created"], tot["open"], tot["sla_breaches"]),
             (3, 1, 3, 4, 3, 1), "totals (c4 unassigned counts here)")
    check_eq(st["channels"], [{"channel": "api", "created": 4, "open": 3}],
             "per channel")
    check_eq((tot["ratings"], tot["rating_avg"]), (0, None), "no ratings")

    # a period before everything counts nothing but what is open now
    early = sue.call("stats", **{"from": t0 - 7200000, "to": t0 - 3600000})
    check_eq((early["totals"]["handled"], early["totals"]["created"],
              early["totals"]["open"], early["totals"]["sla_breaches"]),
             (0, 0, 3, 0), "an earlier period")
    check_eq(len(sue.call("stats")["agents"]), 4, "default period")
    check_eq(online(w, "root").call("stats", **{"from": frm, "to": to}),
             st, "an admin gets the same")
    forbidden(ann, "stats")
    forbidden(bob, "stats", **{"from": frm})
    r = sue.request("stats", **{"from": to, "to": frm})
    check_eq(r["error"]["code"], "bad_request", "to before from")

    cli = json.loads(out(w.inboxctl("stats", "--json", "--from", str(frm),
                                    "--to", str(to))))
    check_eq(cli, st, "inboxctl stats --json = the stats verb")
    text = out(w.inboxctl("stats", "--from", "1h"))
    for part in ("AGENT", "TEAM", "CHANNEL", "support", "billing", "ann",
                 "bob", "api"):
        check(part in text, "stats table lacks %r" % part, text)
    cp = w.inboxctl("stats", "--from", "soon", check_rc=False)
    check_eq(cp.returncode, 2, "a bad --from")


TESTS = {
    "sla_tail_replays_and_follows_alerts":
        (test_sla_tail_replays_and_follows_alerts, SLA),
    "agent_set_and_list": (test_agent_set_and_list, AGENTS),
    "stats_verb_and_inboxctl_agree":
        (test_stats_verb_and_inboxctl_agree, STATS),
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
