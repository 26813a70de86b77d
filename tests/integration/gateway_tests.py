#!/usr/bin/env python3
"""inbox-gateway's protocol with real websocket clients: agents see only
their teams' dialogs (feeds, fetches, pushes, commands), a client that
cannot keep up is cut off with "resync" while memory stays bounded,
reconnecting from a trimmed stream says resync, typing is relayed to those
who see the dialog, presence turns away when idle, and the web client's
files come with ETag, 304 and gzip.

Usage: gateway_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error.
"""

import gzip
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    WsClient, WsHandshakeRefused, check, check_eq, envelope, run_test,
    wait_for, ws_closed)

PW = "correct horse battery staple"


def agent(w, login, role="agent", teams=None):
    w.add_agent(login, PW, role=role)
    if teams is not None:
        w.inboxctl("agent", "set", login, "--teams", teams)
    ws = w.ws_connect(w.token(login, PW))
    ws.call("ping")
    return ws


def post(w, connector, ext, thread):
    headers = {"Authorization": "Bearer s3cret"} if connector == "sec1" \
        else None
    w.post_ok(connector, envelope(ext, thread), headers=headers)


TEAMS = {"connector api1": {"team": "support"},
         "connector sec1": {"team": "sales"}}


def test_agents_see_only_their_teams_dialogs(w):
    ann = agent(w, "ann", teams="support")
    bob = agent(w, "bob", teams="sales")
    sue = agent(w, "sue", role="supervisor")
    post(w, "api1", "m-1", "t-support")
    post(w, "sec1", "m-2", "t-sales")
    e1 = sue.wait_event("conversation.created", lambda e: e["data"][
        "conversation"]["thread"] == "t-support")
    e2 = sue.wait_event("conversation.created", lambda e: e["data"][
        "conversation"]["thread"] == "t-sales")
    sup, sal = e1["data"]["conversation"], e2["data"]["conversation"]
    # pushes: each agent hears only its team's dialog
    ann.wait_event("message.created", lambda e:
                   e["data"]["message"]["external_id"] == "m-1")
    bob.wait_event("message.created", lambda e:
                   e["data"]["message"]["external_id"] == "m-2")
    time.sleep(0.5)
    check_eq([e["data"]["message"]["external_id"] for e in
              ann.find_events("message.created")], ["m-1"],
             "ann was pushed only support's message")
    check_eq([e["data"]["conversation"]["thread"] for e in
              bob.find_events("conversation.created")], ["t-sales"],
             "bob was pushed only sales' dialog")
    # feeds
    check_eq([c["id"] for c in ann.call("feed")["conversations"]],
             [sup["id"]], "ann's feed")
    check_eq(sorted(c["id"] for c in sue.call("feed")["conversations"]),
             sorted([sup["id"], sal["id"]]), "the supervisor sees all")
    # fetching or acting on another team's dialog: as if it did not exist
    r = ann.request("conversation.get", id=sal["id"])
    check_eq(r["error"]["code"], "not_found", "get of another team's")
    r = ann.request("conversation.close", id=sal["id"])
    check_eq(r["error"]["code"], "not_found", "close of another team's")
    r = ann.request("note.add", id=sal["id"], text="peek")
    check_eq(r["error"]["code"], "not_found", "note on another team's")
    # once assigned to ann, she sees it wherever it comes from
    sue.call("conversation.assign", id=sal["id"], assignee="ann")
    check_eq(ann.call("conversation.get", id=sal["id"])["conversation"]
             ["id"], sal["id"], "her own dialog of another team")
    # typing goes to those who see the dialog, not to another team
    sue.call("typing", id=sup["id"])
    ann.wait_event("typing", lambda e: e["data"]["conversation_id"] ==
                   sup["id"] and e["data"]["login"] == "sue")
    time.sleep(0.3)
    check_eq(bob.find_events("typing"), [], "bob is not told")
    # the SLA feed is for supervisors (and the dialog's agent)
    r = ann.request("sla.recent")
    check_eq(r["error"]["code"], "forbidden", "sla.recent for an agent")


def test_a_slow_client_is_cut_off_with_resync(w):
    w.add_agent("ann", PW)
    slow = w.ws_connect(w.token("ann", PW))
    slow.call("ping")
    # the client stops reading: its receive window fills, the gateway
    # cannot write to it any more
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    gw = w.procs["gateway"].pid

    def rss():
        with open("/proc/%d/status" % gw) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    before = rss()
    big = "x" * 20000
    for i in range(300):
        w.post_ok("api1", envelope("m-%d" % i, "t-%d" % (i % 20),
                                   text=big))

    def cut():
        with open(w.procs["gateway"].logpath) as f:
            return "closing (resync)" in f.read()
    wait_for(cut, 30, "the gateway cuts the slow client off")
    after = rss()
    # the gateway closed its end: the connection is not ESTABLISHED on
    # the gateway's side any more (what the kernel still holds for the
    # client is not the gateway's memory)
    import subprocess
    cport = slow.sock.getsockname()[1]

    def gateway_closed():
        out = subprocess.run(["ss", "-tnH", "state", "established",
                              "sport", "=", ":%d" % w.gateway_port,
                              "dport", "=", ":%d" % cport],
                             capture_output=True, text=True).stdout
        return out.strip() == ""
    wait_for(gateway_closed, 10, "the gateway closed the slow socket")
    check(after - before < 100 * 1024, "gateway memory stayed bounded "
          "(%d kB more for 300 events of 20 kB)" % (after - before))
    # a client that reads is served as usual, and may come back
    ws = w.ws_connect(w.token("ann", PW))
    w.post_ok("api1", envelope("m-last", "t-0"))
    ws.wait_event("message.created", lambda e: e["data"]["message"][
        "external_id"] == "m-last")


def test_resubscribe_after_trim_says_resync(w):
    ws = agent(w, "ann")
    w.post_ok("api1", envelope("m-1", "t-1"))
    e = ws.wait_event("message.created")
    old = e["seq"]
    for i in range(3):
        w.post_ok("api1", envelope("m-%d" % (i + 2), "t-1"))
    ws.wait_event("message.created", lambda e: e["data"]["message"][
        "external_id"] == "m-4")
    w.redis("XTRIM", "inbox:events", "MAXLEN", "2")
    r = ws.request("subscribe", since=old)
    check_eq(r.get("ok"), False, "subscribe from a trimmed seq")
    check_eq(r["error"]["code"], "resync", "resync")


def test_presence_turns_away_when_idle(w):
    sue = agent(w, "sue", role="supervisor")
    ann = agent(w, "ann")
    sue.wait_event("agent.presence", lambda e: e["data"]["login"] == "ann"
                   and e["data"]["presence"] == "online")
    sue.wait_event("agent.presence", lambda e: e["data"]["login"] == "ann"
                   and e["data"]["presence"] == "away", timeout=10)
    ann.call("ping")
    sue.wait_event("agent.presence", lambda e: e["data"]["login"] == "ann"
                   and e["data"]["presence"] == "online"
                   and e["seq"] > sue.find_events("agent.presence")[-2][
                       "seq"], timeout=10)
    a = [x for x in json.loads(w.inboxctl("agent", "list", "--json")
                               .stdout) if x["login"] == "ann"][0]
    check_eq(a["presence"], "online", "online again after a frame")


def test_static_files_have_etag_304_and_gzip(w):
    st, h, body = w.http("GET", w.gateway_port, "/",
                         headers={"Accept-Encoding": "gzip"})
    check_eq(st, 200, "index")
    h = {k.lower(): v for k, v in h.items()}
    check_eq(h.get("content-encoding"), "gzip", "gzip when asked")
    text = gzip.decompress(body)
    check(b"<html" in text.lower() or b"<!doctype" in text.lower(),
          "the page", text[:200])
    etag = h.get("etag")
    check(etag, "an ETag", h)
    st, h2, body2 = w.http("GET", w.gateway_port, "/",
                           headers={"If-None-Match": etag})
    check_eq(st, 304, "not modified")
    check_eq(body2, b"", "no body with 304")
    st, h3, body3 = w.http("GET", w.gateway_port, "/")
    check_eq(body3, text, "plain when not asked for gzip")
    check_eq(w.http("GET", w.gateway_port, "/../etc/passwd")[0], 404,
             "no escape from the web root")


def test_expired_token_and_tls(w):
    """A token signed with the gateway's own secret but expired is
    refused; with tls_cert/tls_key the gateway speaks HTTPS and WSS."""
    import hashlib
    import hmac
    import ssl
    import subprocess
    w.add_agent("ann", PW)
    good = w.token("ann", PW)
    login, exp, nonce, tag, mac = good.split(".")
    with open(os.path.join(w.tmp, "gateway.secret"), "rb") as f:
        secret = f.read()
    payload = "%s.%d.%s.%s" % (login, int(time.time() * 1000) - 1000, nonce,
                               tag)
    forged = payload + "." + hmac.new(secret, payload.encode(),
                                      hashlib.sha256).hexdigest()
    check_eq(w.ws_handshake_status("/ws?token=" + good), 101, "fresh token")
    check_eq(w.ws_handshake_status("/ws?token=" + forged), 401,
             "an expired token, correctly signed")
    # TLS
    cert = os.path.join(w.tmp, "gw-cert.pem")
    key = os.path.join(w.tmp, "gw-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-keyout", key, "-out", cert], check=True,
                   capture_output=True)
    w.stop("gateway")
    w.conf_extra["gateway"] = {"tls_cert": cert, "tls_key": key}
    w.write_config()
    w.start_nowait("gateway")
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False

    def https_ok():
        try:
            with socket.create_connection(("127.0.0.1", w.gateway_port),
                                          1) as raw:
                with ctx.wrap_socket(raw) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
                    return b"200" in s.recv(200)
        except OSError:
            return False
    wait_for(https_ok, 15, "the gateway answers over TLS")
    with socket.create_connection(("127.0.0.1", w.gateway_port), 2) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(2)
        try:
            data = raw.recv(200)
        except OSError:
            data = b""
        check(b"200 OK" not in data, "no plain HTTP on the TLS port", data)


def test_sockets_per_agent_are_limited(w):
    import urllib.parse
    w.add_agent("ann", PW)
    w.add_agent("bob", PW)
    token = w.token("ann", PW)
    path = "/ws?token=" + urllib.parse.quote(token, safe="")
    socks = [w.ws_connect(token) for _ in range(3)]
    for s in socks:
        s.call("ping")
    check_eq(w.ws_handshake_status(path), 429,
             "a fourth socket of ann (max_sockets_per_agent = 3)")
    bob = w.ws_connect(w.token("bob", PW))
    check(bob.call("ping").get("now"), "another agent is not limited")
    socks[0].close()
    wait_for(lambda: w.ws_handshake_status(path) == 101, 10,
             "a socket again once one of ann's closed")
    check(socks[1].call("ping").get("now"), "ann's open sockets still served")
    with open(w.procs["gateway"].logpath) as f:
        check("max_sockets_per_agent" in f.read(),
              "the refusal is logged with the setting to change")
    w.assert_running("gateway")


def handshake(port, token):
    import urllib.parse
    try:
        c = WsClient("127.0.0.1", port, "/ws?token=" +
                     urllib.parse.quote(token, safe=""))
    except WsHandshakeRefused as e:
        return e.status
    c.close()
    return 101


def second_gateway(w):
    """Another gateway on the same Redis and store, on its own port."""
    port = w._port()
    conf2 = w.conf_path + ".gateway2"
    with open(w.conf_path) as f:
        text = f.read()
    with open(conf2, "w") as f:
        f.write(text.replace("port = %d" % w.gateway_port, "port = %d" % port))
    w.start("gateway2", conf=conf2)
    wait_for(lambda: w.http("GET", port, "/healthz", timeout=2)[0] == 200,
             10, "the second gateway answers /healthz")
    return port


def test_logout_reaches_every_gateway(w):
    """A logout on one gateway closes the token's sockets on another one,
    which refuses the token from then on, and so does a gateway started
    later (it loads the revocations from Redis)."""
    w.add_agent("ann", PW)
    port2 = second_gateway(w)
    token, other = w.token("ann", PW), w.token("ann", PW)
    ws1 = w.ws_connect(token)
    ws2 = WsClient("127.0.0.1", port2, "/ws?token=" + token)
    check(ws2.call("ping").get("now"), "the token works on gateway 2")
    st, _, _ = w.http("POST", w.gateway_port, "/api/logout",
                      headers={"Authorization": "Bearer " + token})
    check_eq(st, 200, "logout on gateway 1")
    wait_for(lambda: ws_closed(ws1), 5, "the socket on gateway 1 closed")
    wait_for(lambda: ws_closed(ws2), 5, "the socket on gateway 2 closed")
    check_eq(handshake(port2, token), 401, "gateway 2 refuses the token")
    check_eq(handshake(port2, other), 101, "another token of ann on 2")
    w.stop("gateway2")
    w.start("gateway2", conf=w.conf_path + ".gateway2")
    wait_for(lambda: w.http("GET", port2, "/healthz", timeout=2)[0] == 200,
             10, "gateway 2 back")
    check_eq(handshake(port2, token), 401,
             "a restarted gateway refuses the logged-out token")
    check_eq(w.redis_cli("ZCARD", "inbox:revoked"), "1",
             "one revocation kept in Redis")
    w.assert_running("gateway")


def test_sockets_outlive_a_redis_outage(w):
    """Redis goes away: open sockets keep being served from the store
    (reads of the stream answer unavailable, quickly), and once Redis is
    back the gateway reconnects by itself: live events flow again to the
    same socket and subscribe works."""
    w.add_agent("ann", PW)
    token = w.token("ann", PW)
    ws = w.ws_connect(token)
    post(w, "api1", "m-1", "t-1")
    first = ws.wait_event("message.created")
    w.stop_redis(signal.SIGKILL)
    t0 = time.monotonic()
    check(ws.call("ping").get("now"), "ping while redis is down")
    check_eq(len(ws.call("feed", scope="all")["conversations"]), 1,
             "the feed from the store while redis is down")
    r = ws.request("subscribe", since=first["seq"])
    check(r.get("ok") is False and r["error"]["code"] == "unavailable",
          "subscribe while redis is down says unavailable", r)
    r = ws.request("conversation.close", id=first["data"]["message"][
        "conversation_id"])
    check(r.get("ok") is False and r["error"]["code"] == "unavailable",
          "a command while redis is down says unavailable", r)
    st, _, body = w.http("POST", w.gateway_port, "/api/logout",
                         headers={"Authorization": "Bearer " + token})
    check_eq(st, 503, "a logout while redis is down (it cannot be kept)")
    check(b"stays valid" in body, "says the token stays valid", body)
    check(time.monotonic() - t0 < 3, "answers without waiting for redis")
    w.start_redis()
    w.restart("webhooks")
    wait_for(lambda: ws.request("subscribe", since=first["seq"]).get("ok"),
             10, "subscribe works again")
    n = len(ws.events)
    post(w, "api1", "m-2", "t-1")
    ws.wait_event("message.created", lambda e: e["data"]["message"][
        "external_id"] == "m-2", timeout=10, start=n)
    check(ws.call("ping").get("now"), "the refused logout left the socket")
    w.assert_running("gateway")


def test_gateway_started_without_redis(w):
    """A gateway started while Redis is down answers /healthz 503 and
    refuses websockets until redis.timeout_ms has passed (it cannot know
    the revoked tokens yet), then serves, says so in its log, and loads the
    revocations once Redis is back: a token logged out before is refused
    again."""
    w.add_agent("ann", PW)
    revoked, other = w.token("ann", PW), w.token("ann", PW)
    st, _, _ = w.http("POST", w.gateway_port, "/api/logout",
                      headers={"Authorization": "Bearer " + revoked})
    check_eq(st, 200, "logout")
    w.stop("gateway")
    w.stop_redis()
    w.start_nowait("gateway")
    t0 = time.monotonic()
    wait_for(lambda: _status(w) != 0, 5, "the gateway listens")
    check_eq(_status(w), 503, "healthz while the revocations are unknown")
    check_eq(w.ws_handshake_status("/ws?token=" + other), 503,
             "a websocket while the revocations are unknown")
    wait_for(lambda: _status(w) == 200, 10,
             "the gateway serves after redis.timeout_ms")
    check(time.monotonic() - t0 >= 1.5, "not before the timeout (2 s)")
    logpath = w.procs["gateway"].logpath
    with open(logpath) as f:
        check("serving without the list of revoked tokens" in f.read(),
              "the log says it serves without revocations")
    w.start_redis()
    wait_for(lambda: "1 revoked tokens known" in open(logpath).read(), 10,
             "the revocations loaded once redis is back")
    check_eq(w.ws_handshake_status("/ws?token=" + revoked), 401,
             "the logged-out token is refused again")
    check_eq(w.ws_handshake_status("/ws?token=" + other), 101,
             "another token works")


def _status(w):
    """/healthz's status, 0 while nothing listens."""
    try:
        return w.http("GET", w.gateway_port, "/healthz", timeout=2)[0]
    except OSError:
        return 0


def metric(w, name):
    body = w.http("GET", w.gateway_port, "/metrics")[2].decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def test_a_burst_goes_out_in_few_writes(w):
    """A socket behind by many events gets them as whole frames, in order,
    several to a write (inbox_gateway_writes_total grows far less than
    inbox_gateway_frames_sent_total), and a big frame among them arrives
    whole."""
    w.add_agent("ann", PW)
    ws = w.ws_connect(w.token("ann", PW))
    ws.call("ping")
    frames0 = metric(w, "inbox_gateway_frames_sent_total")
    writes0 = metric(w, "inbox_gateway_writes_total")
    big = "x" * 70000            # a 64-bit length in its header
    n = 300
    # one script: the gateway reads them in one XREAD, as a burst
    w.redis("EVAL", """
        for i = 0, tonumber(ARGV[1]) - 1 do
            local d = '{"i":' .. i .. '}'
            if i == 150 then
                d = '{"i":150,"pad":"' .. string.rep('x', 70000) .. '"}'
            end
            redis.call('XADD', KEYS[1], '*', 'event', 'test.tick',
                       'data', d)
        end""", 1, "inbox:events", n)
    got = []
    deadline = time.monotonic() + 20
    while len(got) < n and time.monotonic() < deadline:
        ws.pump(0.5)
        got = [e for e in ws.events if e["event"] == "test.tick"]
    check_eq([e["data"]["i"] for e in got], list(range(n)),
             "every event once, in order")
    check_eq(got[150]["data"].get("pad"), big, "the big frame whole")
    frames = metric(w, "inbox_gateway_frames_sent_total") - frames0
    writes = metric(w, "inbox_gateway_writes_total") - writes0
    check(frames >= n, "frames counted", frames)
    check(writes < frames, "several frames to a write", writes, frames)
    check(ws.call("ping").get("now"), "the socket goes on")


TESTS = {
    "agents_see_only_their_teams_dialogs":
        (test_agents_see_only_their_teams_dialogs, TEAMS),
    "a_slow_client_is_cut_off_with_resync":
        (test_a_slow_client_is_cut_off_with_resync,
         {"gateway": {"ring_size": 64}}),
    "resubscribe_after_trim_says_resync":
        (test_resubscribe_after_trim_says_resync, None),
    "presence_turns_away_when_idle":
        (test_presence_turns_away_when_idle,
         {"gateway": {"away_after": "2s"}}),
    "static_files_have_etag_304_and_gzip":
        (test_static_files_have_etag_304_and_gzip, None),
    "expired_token_and_tls": (test_expired_token_and_tls, None),
    "sockets_per_agent_are_limited":
        (test_sockets_per_agent_are_limited,
         {"gateway": {"max_sockets_per_agent": 3}}),
    "logout_reaches_every_gateway":
        (test_logout_reaches_every_gateway, None),
    "sockets_outlive_a_redis_outage":
        (test_sockets_outlive_a_redis_outage, None),
    "a_burst_goes_out_in_few_writes":
        (test_a_burst_goes_out_in_few_writes, None),
    "gateway_started_without_redis":
        (test_gateway_started_without_redis, None),
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
