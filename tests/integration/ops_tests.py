#!/usr/bin/env python3
"""Operators' endpoints: Prometheus /metrics and /healthz on the router's
listener, the gateway and the webhooks server, with figures that follow
the traffic.

Usage: ops_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error.
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    _reserve_port, check, check_eq, envelope, run_test, wait_for)

PW = "correct horse battery staple"


def metric(text, name, labels=None):
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if m and m.group(1) == name and (labels is None or
                                         labels in (m.group(2) or "")):
            return float(m.group(3))
    return None


def test_metrics_follow_the_traffic(w):
    port, _ = _reserve_port()
    w.conf_extra["router"] = {"metrics": "127.0.0.1:%d" % port}
    w.write_config()
    w.start_all()
    w.add_agent("ann", PW, role="supervisor")
    ws = w.ws_connect(w.token("ann", PW))
    ws.call("ping")
    for i in range(3):
        w.post_ok("api1", envelope("m-%d" % i, "t-1"))
    ws.wait_event("message.created", lambda e:
                  e["data"]["message"]["external_id"] == "m-2")
    w.post("api1", {"bad": "envelope"})

    st, h, body = w.http("GET", port, "/healthz")
    check_eq(st, 200, "router healthz")

    def router_text():
        return w.http("GET", port, "/metrics")[2].decode()
    wait_for(lambda: (metric(router_text(),
                             "inbox_router_entries_applied_total") or 0)
             >= 4, 10, "the router counts what it applied")
    t = router_text()
    check_eq(metric(t, "inbox_router_active"), 1.0, "active router")
    check(metric(t, "inbox_router_batches_total") >= 1, "batches", t)
    check(metric(t, "inbox_store_bytes") > 0, "store size", t)
    check(metric(t, "inbox_stream_length", 'stream="inbox:in"') >= 3,
          "inbox:in length", t)
    check_eq(metric(t, "inbox_stream_pending", 'stream="inbox:in"'), 0.0,
             "nothing pending")

    st, h, body = w.http("GET", w.gateway_port, "/metrics")
    check_eq(st, 200, "gateway metrics")
    t = body.decode()
    check_eq(metric(t, "inbox_gateway_sockets"), 1.0, "one socket", )
    check(metric(t, "inbox_gateway_frames_sent_total") >= 3, "frames", t)
    check_eq(metric(t, "inbox_gateway_logins_total", 'result="ok"'), 1.0,
             "one login")

    st, h, body = w.http("GET", w.webhooks_port, "/metrics")
    check_eq(st, 200, "webhooks metrics")
    t = body.decode()
    check_eq(metric(t, "inbox_webhooks_envelopes_total"), 3.0, "envelopes")
    check_eq(metric(t, "inbox_webhooks_answers_total", 'class="4xx"'), 1.0,
             "the bad request counted")
    check(re.search(r"^# TYPE inbox_webhooks_envelopes_total counter$", t,
                    re.M), "TYPE lines", t)


def test_sighup_reloads_without_dropping_sockets(w):
    import signal
    import time
    w.conf_extra["connector api1"] = {"team": "support"}
    w.write_config()
    w.start_all()
    w.add_agent("bob", PW)
    bob = w.ws_connect(w.token("bob", PW))
    bob.call("ping")
    w.post_ok("api1", envelope("m-1", "t-1", text="refund please"))
    wait_for(lambda: len(w.conversations()) == 1, 10, "the dialog")
    check_eq(bob.call("feed")["conversations"], [],
             "bob sees no support dialog")

    def logged(name, needle, count=1):
        with open(w.procs[name].logpath) as f:
            return f.read().count(needle) >= count

    # a broken file: refused, everything keeps running as it was
    with open(w.conf_path, "a") as f:
        f.write("\n[router]\nnonsense = 1\n")
    w.procs["gateway"].popen.send_signal(signal.SIGHUP)
    w.procs["router"].popen.send_signal(signal.SIGHUP)
    wait_for(lambda: logged("gateway", "the running configuration stays")
             and logged("router", "the running configuration stays"), 10,
             "the bad file refused")
    check(bob.call("ping").get("now"), "the socket is still served")
    # a good one: the gateway shows bob everything, the router tags
    w.conf_extra["gateway"] = {"visibility": "all"}
    w.conf_extra["rule refunds"] = {"keyword": "refund", "tags": "refund"}
    w.write_config()
    w.procs["gateway"].popen.send_signal(signal.SIGHUP)
    w.procs["router"].popen.send_signal(signal.SIGHUP)
    wait_for(lambda: logged("gateway", "reload: ") and
             logged("router", "1 rules"), 10, "both reloaded")
    feed = bob.call("feed")["conversations"]
    check_eq(len(feed), 1, "the same socket now sees the dialog")
    w.post_ok("api1", envelope("m-2", "t-2", text="another refund"))
    e = bob.wait_event("conversation.created", timeout=10)
    check_eq(e["data"]["conversation"]["tags"], ["refund"],
             "the reloaded rule applies")
    w.assert_running("router", "gateway", "webhooks")


def test_json_logs(w):
    import json
    import signal
    w.conf_extra["log"] = {"format": "json", "level": "debug"}
    w.write_config()
    w.start_all()
    w.post_ok("api1", envelope("m-1", "t-1", text='say "hi"\n\tplease'))
    w.post("api1", {"bad": "envelope"})
    wait_for(lambda: len(w.conversations()) == 1, 10, "the dialog")
    w.procs["router"].popen.send_signal(signal.SIGHUP)

    def lines(name):
        with open(w.procs[name].logpath, encoding="utf-8") as f:
            return [ln for ln in f.read().splitlines() if ln.strip()]
    wait_for(lambda: any("reload: " in ln for ln in lines("router")), 10,
             "the router logs its reload")
    for name in ("router", "gateway", "webhooks"):
        got = lines(name)
        check(len(got) >= 1, "%s logged" % name, got)
        for ln in got:
            try:
                o = json.loads(ln)
            except ValueError as e:
                check(False, "%s: a line that is not JSON: %r (%s)"
                      % (name, ln, e))
            check(isinstance(o, dict) and
                  re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
                           o.get("time", "")) and
                  o.get("proc") == name and
                  o.get("level") in ("error", "warn", "info", "debug") and
                  isinstance(o.get("msg"), str),
                  "%s: a line without time, proc, level and msg" % name, ln)
            if o["level"] == "debug":
                check(isinstance(o.get("file"), str) and
                      isinstance(o.get("line"), int),
                      "%s: a debug line names file and line" % name, ln)
        check(any("ready" in json.loads(ln)["msg"] for ln in got),
              "%s logs ready" % name, got)
    w.assert_running("router", "gateway", "webhooks")


def test_oversized_headers_are_refused(w):
    import http.client
    w.start_all()
    for what, hdrs in (("a 10 kB header", {"X-Big": "a" * 10000}),
                       ("300 headers", {"X-H%d" % i: "v" * 20
                                        for i in range(300)})):
        for port, path in ((w.webhooks_port, "/hooks/api1"),
                           (w.gateway_port, "/api/login")):
            try:
                st, _, _ = w.http("POST", port, path, b"{}", hdrs)
            except (http.client.HTTPException, OSError):
                st = None   # closed without an answer
            check(st is None or 400 <= st < 500,
                  "%s to %d: %r" % (what, port, st))
    check(w.post_ok("api1", envelope("m-1", "t-1"))["ok"],
          "the webhooks server still serves")
    check_eq(w.http("GET", w.gateway_port, "/healthz")[0], 200,
             "the gateway still serves")
    wait_for(lambda: len(w.conversations()) == 1, 10, "the message stored")
    w.assert_running("router", "gateway", "webhooks")


TESTS = {
    "oversized_headers_are_refused": test_oversized_headers_are_refused,
    "json_logs": test_json_logs,
    "metrics_follow_the_traffic": test_metrics_follow_the_traffic,
    "sighup_reloads_without_dropping_sockets":
        test_sighup_reloads_without_dropping_sockets,
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
