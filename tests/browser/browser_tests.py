#!/usr/bin/env python3
"""End-to-end tests of the web client (ws_gateway/web) in headless Chromium.

Each test starts a real world with tests/harness/inboxd_harness.py (redis,
router, webhooks, gateway serving the client), adds agents, then runs one
scenario of scenarios.mjs under node: playwright-core drives Debian's
/usr/bin/chromium against the gateway and posts webhooks itself, so messages
arrive while the page is open. The Python side checks what the page cannot
see (the fake Telegram API got the reply, the store has the tag, inbox:sla
has the alert).

Screenshots of each step go to <tmpdir>/screenshots and are copied to
$INBOXD_ARTIFACTS/<test> (default <build>/meson-logs/browser/<test>).

Usage: browser_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error (no node, npm install failed).
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from inboxd_harness import (  # noqa: E402
    HarnessError, check, check_eq, log, run_test, stream_entries, wait_for)
from fake_platform import FakePlatform  # noqa: E402

PW = "correct horse battery staple"
TG_SECRET = "tg-secret_123"
CHROMIUM = os.environ.get("INBOXD_CHROMIUM", "/usr/bin/chromium")


# -- node and playwright-core ------------------------------------------------

def pinned_version():
    with open(os.path.join(HERE, "package.json")) as f:
        return json.load(f)["dependencies"]["playwright-core"]


def installed_version():
    try:
        with open(os.path.join(HERE, "node_modules", "playwright-core",
                               "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def ensure_playwright():
    """npm install into tests/browser/node_modules once (parallel tests
    take a lock; an install of the pinned version is not repeated)."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise HarnessError("%s not in PATH (contrib/deps.sh installs "
                               "nodejs)" % tool)
    if not os.access(CHROMIUM, os.X_OK):
        raise HarnessError("%s missing (contrib/deps.sh installs chromium)"
                           % CHROMIUM)
    want = pinned_version()
    if installed_version() == want:
        return
    lock = os.path.join(tempfile.gettempdir(), "inboxd-browser-npm.lock")
    with open(lock, "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        if installed_version() == want:
            return
        log("npm install playwright-core@%s into %s" % (want, HERE))
        cp = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--no-save",
             "--no-package-lock", "--loglevel=error"],
            cwd=HERE, capture_output=True, timeout=600,
            env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"))
        if cp.returncode != 0 or installed_version() != want:
            raise HarnessError("npm install failed (%d):\n%s\n%s" % (
                cp.returncode, cp.stdout.decode(errors="replace")[-3000:],
                cp.stderr.decode(errors="replace")[-3000:]))


def artifacts_dir(name):
    base = os.environ.get("INBOXD_ARTIFACTS") or os.path.join(
        os.environ.get("INBOXD_BUILD", tempfile.gettempdir()), "meson-logs",
        "browser")
    return os.path.join(base, name)


def browse(w, scenario, timeout=150, ctl=None, **env):
    """Runs one scenario of scenarios.mjs against the world; its screenshots
    are copied to the artifacts directory whatever the outcome. A line
    "CTL <name>" from the scenario runs ctl[name](w) here (stop a daemon,
    say) and answers "ok" (or "error ...") on the scenario's stdin."""
    shots = os.path.join(w.tmp, "screenshots")
    os.makedirs(shots, exist_ok=True)
    e = dict(os.environ)
    e.update({
        "BASE_URL": "http://127.0.0.1:%d" % w.gateway_port,
        "WEBHOOKS_URL": "http://127.0.0.1:%d" % w.webhooks_port,
        "SHOTS": shots,
        "CHROMIUM": CHROMIUM,
        "PASSWORD": PW,
        "TG_SECRET": TG_SECRET,
    })
    e.update({k: str(v) for k, v in env.items()})
    logpath = os.path.join(w.tmp, "browser-%s.log" % scenario)
    w.logs.append(logpath)
    log("node scenarios.mjs", scenario)
    result = None
    lines = []
    try:
        proc = subprocess.Popen(
            ["node", os.path.join(HERE, "scenarios.mjs"), scenario],
            cwd=HERE, env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            with open(logpath, "w", encoding="utf-8") as out:
                for raw in proc.stdout:
                    ln = raw.decode("utf-8", "replace").rstrip("\n")
                    lines.append(ln)
                    out.write(ln + "\n")
                    out.flush()
                    if ln.startswith("RESULT "):
                        result = json.loads(ln[7:])
                    elif ln.startswith("CTL "):
                        name = ln[4:].strip()
                        try:
                            (ctl or {})[name](w)
                            answer = "ok"
                        except Exception as ex:  # noqa: BLE001 - told
                            answer = "error %s: %s" % (name, ex)
                        log("ctl", name, "->", answer)
                        proc.stdin.write((answer + "\n").encode())
                        proc.stdin.flush()
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        sys.stdout.write("\n".join(lines[-80:]) + "\n")
        check(timer.finished.is_set() is False or rc == 0,
              "scenario %s did not finish within %ds" % (scenario, timeout))
        check(rc == 0, "browser scenario %s failed (exit %d)"
              % (scenario, rc))
        check(result is not None, "scenario %s printed no RESULT" % scenario)
        return result
    finally:
        dest = artifacts_dir(w.test_name)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(shots, dest, dirs_exist_ok=True)
        log("screenshots:", dest)


def conv_by_thread(w, thread):
    for c in w.conversations("all"):
        if c.get("thread") == thread:
            return c
    return None


# -- tests ----------------------------------------------------------------------

def test_login(w):
    w.add_agent("alice", PW, name="Alice Agent")
    r = browse(w, "login", LOGIN="alice")
    path = "/ws?token=" + urllib.parse.quote(r["token"], safe="")
    check_eq(w.ws_handshake_status(path), 401,
             "the token of the page that logged out is revoked")


BLOB = b"%PDF-1.4\n% an attachment the e-mail connector stored\n"


def test_live_feed(w):
    # an attachment stored by hash, as the e-mail connector does
    blobs = os.path.join(w.tmp, "blobs")
    w.conf_extra["store"] = {"blob_path": blobs}
    w.write_config()
    w.restart("gateway")
    hexd = hashlib.sha256(BLOB).hexdigest()
    os.makedirs(os.path.join(blobs, hexd[:2]))
    with open(os.path.join(blobs, hexd[:2], hexd), "wb") as f:
        f.write(BLOB)
    w.add_agent("alice", PW, name="Alice Agent")
    r = browse(w, "live_feed", LOGIN="alice", BLOB_HEX=hexd,
               BLOB_TEXT=BLOB.decode())
    c = conv_by_thread(w, "t-live")
    check(c is not None, "the posted dialog is stored")
    check_eq(r["id"], c["id"], "the row the page showed is the stored "
             "dialog")


def test_reply_sent(w, fake):
    w.add_agent("alice", PW, name="Alice Agent", role="supervisor")
    ws = w.ws_connect(w.token("alice", PW))
    ws.call("template.put", name="thanks",
            text="Thank you, {contact.name}! We are on it.")
    ws.close()
    browse(w, "reply_sent", LOGIN="alice")
    texts = [c.json().get("text") for c in fake.calls_to("telegram")]
    check_eq(texts, ["Здравствуйте, Иван! Reply from the browser <b>ok</b>",
                     "Thank you, Иван! We are on it."],
             "sendMessage calls the fake Telegram API received")
    check(all(c.json().get("chat_id") == "5001"
              for c in fake.calls_to("telegram")), "chat_id 5001")


def test_tag_filter(w):
    w.add_agent("alice", PW, name="Alice Agent")
    browse(w, "tag_filter", LOGIN="alice")
    a = conv_by_thread(w, "t-alpha")
    b = conv_by_thread(w, "t-beta")
    check_eq(a["tags"], ["vip"], "tag stored on the tagged dialog")
    check_eq(b["tags"], [], "the other dialog untagged")


def test_snooze_returns(w):
    w.add_agent("alice", PW, name="Alice Agent")
    r = browse(w, "snooze_returns", LOGIN="alice")
    c = conv_by_thread(w, "t-nap")
    check_eq(c["state"], "open", "the dialog is open again")
    check(r["returned_at"] >= r["until"], "it came back when its time "
          "passed, not before", r)


def test_close_closed(w):
    w.add_agent("alice", PW, name="Alice Agent", role="supervisor")
    w.add_agent("bob", PW, name="Bob Agent")
    browse(w, "close_closed", LOGIN="alice")
    ev = w.events_tail(timeout=1)
    mentions = [e for e in ev if e.get("event") == "mention"]
    check(len(mentions) == 1 and mentions[0]["data"]["agent"] == "bob",
          "the note mentioned bob once", mentions or ev[-5:])
    tasks = [e for e in ev if e.get("event") == "task.created"]
    check(len(tasks) == 1 and tasks[0]["data"]["task"]["title"] ==
          "Call the customer back" and tasks[0]["data"]["task"][
              "message_id"] is not None, "task from the message", tasks)
    check_eq(conv_by_thread(w, "t-close-2")["state"], "closed",
             "closed in the store")
    check_eq(conv_by_thread(w, "t-close-1")["state"], "open",
             "the other one untouched")


def test_supervisor_sla(w):
    w.add_agent("sue", PW, name="Sue Supervisor", role="supervisor")
    w.add_agent("ann", PW, name="Ann Agent")
    r = browse(w, "supervisor_sla", LOGIN="sue")
    got = [(f["event"], json.loads(f["data"])["conversation_id"])
           for _, f in stream_entries(w.redis("XRANGE", "inbox:sla", "-",
                                              "+"))]
    check(("sla.breached", r["id"]) in got, "inbox:sla has the breach the "
          "page showed", got)


def test_reconnect_replays(w):
    w.add_agent("alice", PW, name="Alice Agent")
    browse(w, "reconnect", LOGIN="alice", ctl={
        "stop-gateway": lambda w: w.stop("gateway"),
        "start-gateway": lambda w: w.start("gateway"),
    })


def test_phone_layout(w):
    w.add_agent("alice", PW, name="Alice Agent")
    browse(w, "phone_layout", LOGIN="alice")


SLA = {"router": {"auto_assign": 0, "sla_warning_pct": 50},
       "sla fast": {"first_response": "3s", "next_response": "3s",
                    "resolution": "1h", "priority": "urgent, high, normal"}}


def tg_conf(fake):
    return {"connector tg1": {"channel": "telegram", "secret": TG_SECRET,
                              "token": "123456:ABC-def",
                              "api_base": fake.base, "send_attempts": 3}}


TESTS = {
    "login": (test_login, None),
    "live_feed": (test_live_feed, None),
    "reply_sent": (test_reply_sent, "fake"),
    "tag_filter": (test_tag_filter, None),
    "snooze_returns": (test_snooze_returns, None),
    "close_closed": (test_close_closed, None),
    "supervisor_sla": (test_supervisor_sla, SLA),
    "reconnect_replays": (test_reconnect_replays, None),
    "phone_layout": (test_phone_layout, None),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        if len(sys.argv) == 2 and sys.argv[1] == "--list":
            print("\n".join(TESTS))
            sys.exit(0)
        print("usage: %s TEST_ID\n  %s" % (sys.argv[0], "\n  ".join(TESTS)))
        sys.exit(99)
    name = sys.argv[1]
    func, conf = TESTS[name]
    try:
        ensure_playwright()
    except HarnessError as e:
        print("HARNESS ERROR: %s" % e, flush=True)
        sys.exit(99)
    if conf == "fake":
        fake = FakePlatform()
        run_test("browser-" + name, lambda w: func(w, fake),
                 conf_extra=tg_conf(fake))
    else:
        run_test("browser-" + name, func, conf_extra=conf)


if __name__ == "__main__":
    main()
