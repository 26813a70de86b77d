#!/usr/bin/env python3
"""inbox-imap against a real dovecot and a real SMTP server: mail arrives
live through IDLE, exactly once across SIGKILL, dovecot restarts and a
UIDVALIDITY change; agents' replies leave by SMTP with threading headers
and the customer's answer joins the dialog; poison mail is set aside.

Usage: mail_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error.
"""

import email
import email.policy
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    check, check_eq, log, run_test, stream_entries, wait_for)
from mail_harness import Dovecot, SmtpSink  # noqa: E402

PW = "correct horse battery staple"
N = 0


def mail(subject="Hello", body="Hi there", frm="Анна Петрова <anna@example.org>",
         msgid=None, extra=""):
    global N
    N += 1
    msgid = msgid or "m%d.%d@client.example.org" % (N, int(time.time()))
    return msgid, (
        "From: %s\r\n"
        "To: Support <support@example.com>\r\n"
        "Subject: %s\r\n"
        "Date: Mon, 30 Nov 2026 10:00:%02d +0000\r\n"
        "Message-ID: <%s>\r\n"
        "%s"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n%s\r\n" % (frm, subject, N % 60, msgid, extra, body))


def world_up(w, **conn):
    dc = Dovecot(w, tls=conn.pop("tls", False))
    sink = SmtpSink(w, **conn.pop("sink", {}))
    c = dc.connector_conf(smtp_host="127.0.0.1", smtp_port=sink.port,
                          smtp_tls="none", **conn)
    c["from"] = "Support <support@example.com>"
    w.conf_extra["connector mail1"] = c
    w.conf_extra["store"] = {"blob_path": os.path.join(w.tmp, "blobs")}
    w.write_config()
    w.start_all()
    w.add_agent("ann", PW, role="supervisor")
    ws = w.ws_connect(w.token("ann", PW))
    ws.call("ping")
    return dc, sink, ws


def created_msgs(w):
    out = {}
    last = "-"
    while True:
        r = stream_entries(w.redis("XRANGE", "inbox:events", last, "+",
                                   "COUNT", "5000"))
        if last != "-":
            r = r[1:]
        if not r:
            return out
        for sid, f in r:
            if f.get("event") == "message.created":
                m = json.loads(f["data"])["message"]
                if m.get("direction") == "in":
                    out[m["external_id"]] = out.get(m["external_id"], 0) + 1
        last = r[-1][0]


def test_new_mail_arrives_through_idle(w):
    dc, sink, ws = world_up(w)
    w.start("imap")
    time.sleep(0.5)
    mid, raw = mail(subject="=?UTF-8?B?0JPQtNC1INC80L7QuSDQt9Cw0LrQsNC3Pw==?=",
                    body="Здравствуйте! Где мой заказ?")
    t0 = time.time()
    dc.append(raw)
    e = ws.wait_event("conversation.created", timeout=10)
    took = time.time() - t0
    log("mail to conversation.created: %.2f s" % took)
    check(took < 2.0, "new mail within 2 s of APPEND (IDLE)", took)
    c = e["data"]["conversation"]
    check_eq(c["subject"], "Где мой заказ?", "decoded subject")
    check_eq(c["channel"], "email", "channel")
    check_eq(c["contact"]["email"], "anna@example.org", "contact e-mail")
    check_eq(c["contact"]["name"], "Анна Петрова", "contact name")
    g = ws.call("conversation.get", id=c["id"])
    check_eq(g["messages"][0]["text"], "Здравствуйте! Где мой заказ?",
             "text")
    check_eq(g["messages"][0]["external_id"], mid, "external id")


def test_sigkill_refetches_nothing_and_misses_nothing(w):
    dc, sink, ws = world_up(w)
    w.start("imap")
    ids = []
    for i in range(5):
        mid, raw = mail(subject="before %d" % i)
        ids.append(mid)
        dc.append(raw)
    wait_for(lambda: len(created_msgs(w)) == 5, 20, "5 mails in")
    w.kill("imap")
    for i in range(5):
        mid, raw = mail(subject="while down %d" % i)
        ids.append(mid)
        dc.append(raw)
    w.start("imap")
    wait_for(lambda: len(created_msgs(w)) == 10, 20, "10 mails in")
    # and a kill in the middle of a burst
    for i in range(40):
        mid, raw = mail(subject="burst %d" % i)
        ids.append(mid)
        dc.append(raw)
    time.sleep(0.3)
    w.kill("imap")
    w.start("imap")
    wait_for(lambda: len(created_msgs(w)) == 50, 30, "50 mails in")
    time.sleep(1.0)
    got = created_msgs(w)
    check_eq(sorted(got), sorted(ids), "every mail once")
    check_eq([k for k, v in got.items() if v != 1], [], "none twice")


def test_dovecot_restart_and_uidvalidity_change(w):
    dc, sink, ws = world_up(w)
    w.start("imap")
    for i in range(3):
        dc.append(mail(subject="one %d" % i)[1])
    wait_for(lambda: len(created_msgs(w)) == 3, 20, "3 mails in")
    dc.restart()
    dc.append(mail(subject="after restart")[1])
    wait_for(lambda: len(created_msgs(w)) == 4, 30,
             "the connector reconnected and took the new mail")
    # a new UIDVALIDITY: dovecot forgets its UIDs
    dc.stop()
    for name in os.listdir(dc.maildir()):
        if name.startswith("dovecot"):
            os.unlink(os.path.join(dc.maildir(), name))
    time.sleep(1.1)          # UIDVALIDITY is a time in seconds
    dc.start()
    dc.append(mail(subject="after uidvalidity")[1])
    wait_for(lambda: len(created_msgs(w)) == 5, 30, "the fifth mail")
    time.sleep(1.5)
    got = created_msgs(w)
    check_eq(len(got), 5, "five mails")
    check_eq([k for k, v in got.items() if v != 1], [],
             "no mail twice after the UIDVALIDITY change")
    with open(w.procs["imap"].logpath) as f:
        check("UIDVALIDITY changed" in f.read(), "the change was seen")


def test_reply_by_smtp_threads_and_answer_joins(w):
    dc, sink, ws = world_up(w)
    w.start("imap")
    mid, raw = mail(subject="Заказ 17", body="Where is it?")
    dc.append(raw)
    c = ws.wait_event("conversation.created", timeout=10)["data"][
        "conversation"]
    r = ws.call("message.send", id=c["id"], text="It ships today.\n"
                "С уважением, Ann")
    out_id = r["message"]["id"]
    st = ws.wait_event("message.status", lambda e:
                       e["data"]["message_id"] == out_id, timeout=20)
    check_eq(st["data"]["status"], "sent", "reported sent")
    msgs = sink.messages()
    check_eq(len(msgs), 1, "one message at the SMTP server")
    env, data = msgs[0]
    check_eq(env["to"], ["anna@example.org"], "envelope recipient")
    check_eq(env["from"], "support@example.com", "envelope sender")
    m = email.message_from_bytes(data, policy=email.policy.default)
    check_eq(str(m["Subject"]), "Re: Заказ 17", "subject")
    check_eq(m["In-Reply-To"], "<%s>" % mid, "In-Reply-To")
    check_eq(m["References"], "<%s>" % mid, "References")
    check(m["Message-ID"] and m["Date"], "Message-ID and Date", str(m))
    check_eq(m.get_content().replace("\r\n", "\n").strip(),
             "It ships today.\nС уважением, Ann", "body")
    # the customer answers ours, naming only our Message-ID
    ours = m["Message-ID"].strip("<>")
    dc.append(mail(subject="Re: Заказ 17", body="Thanks!",
                   extra="In-Reply-To: <%s>\r\n" % ours)[1])
    e = ws.wait_event("message.created", lambda e:
                      e["data"]["message"].get("text") == "Thanks!",
                      timeout=10)
    check_eq(e["data"]["conversation_id"], c["id"],
             "the answer joined the dialog")


def test_smtp_failures_retry_then_fail(w):
    dc, sink, ws = world_up(w, sink={"fail_first": 1, "code": 451},
                            send_attempts=2)
    w.start("imap")
    dc.append(mail(subject="retry me")[1])
    c = ws.wait_event("conversation.created", timeout=10)["data"][
        "conversation"]
    r = ws.call("message.send", id=c["id"], text="first")
    st = ws.wait_event("message.status", lambda e:
                       e["data"]["message_id"] == r["message"]["id"],
                       timeout=30)
    check_eq(st["data"]["status"], "sent", "a 451 is retried, then sent")
    check_eq(len(sink.messages()), 1, "delivered once")


def test_poison_and_huge_mail_are_set_aside(w):
    dc, sink, ws = world_up(w, max_message_size=60000)
    w.start("imap")
    dc.append(mail(subject="huge", body="x" * 100000)[1])
    dc.append(b"this is not an e-mail at all\r\n\r\n")
    mid, raw = mail(subject="fine after")
    dc.append(raw)
    wait_for(lambda: mid in created_msgs(w), 20, "the good mail after")
    dead = [f for _, f in stream_entries(w.redis("XRANGE", "inbox:dead",
                                                 "-", "+"))]
    check(any("max_message_size" in f["reason"] for f in dead),
          "the huge mail dead-lettered with the reason", dead)
    convs = w.conversations()
    notices = [c for c in convs if "could not import" in
               (c.get("preview") or "")]
    check(len(notices) >= 1, "agents see a dialog that says so", convs)


def test_attachment_stored_and_downloadable(w):
    import base64
    import urllib.request
    dc, sink, ws = world_up(w)
    w.start("imap")
    pdf = b"%PDF-1.4 fake " + bytes(range(256)) * 40
    raw = ("From: Bob <bob@example.net>\r\nTo: support@example.com\r\n"
           "Subject: invoice\r\nMessage-ID: <att1@example.net>\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
           "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "See attached.\r\n"
           "--b1\r\nContent-Type: application/pdf; name=\"x.pdf\"\r\n"
           "Content-Disposition: attachment; filename*=UTF-8''"
           "%D0%A1%D1%87%D0%B5%D1%82.pdf\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" +
           base64.encodebytes(pdf).decode().replace("\n", "\r\n") +
           "--b1--\r\n")
    dc.append(raw)
    c = ws.wait_event("conversation.created", timeout=10)["data"][
        "conversation"]
    m = ws.call("conversation.get", id=c["id"])["messages"][0]
    att = m["attachments"]
    check_eq([(a["name"], a["mime"], a["size"]) for a in att],
             [("Счет.pdf", "application/pdf", len(pdf))], "attachment")
    blob = att[0]["blob"]
    check(blob.startswith("sha256:"), "stored by hash", att)
    token = w.token("ann", PW)
    url = "http://127.0.0.1:%d/api/blobs/%s?token=%s&type=application/pdf" % (
        w.gateway_port, blob[7:], token)
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read()
        check_eq(r.headers.get("Content-Type"), "application/pdf", "type")
    check(body == pdf, "the bytes downloaded are the attachment's")
    try:
        urllib.request.urlopen(url.replace(token, "bad"), timeout=10)
        check(False, "a bad token downloads nothing")
    except urllib.error.HTTPError as e:
        check_eq(e.code, 401, "bad token")


def test_starttls_checks_the_certificate_and_auth_plain(w):
    # a self-signed certificate: refused while verification is on
    dc, sink, ws = world_up(w, tls=True, imap_verify="yes",
                            imap_auth="plain")
    p = w.start_nowait("imap")
    wait_for(lambda: "not trusted" in open(p.logpath).read(), 20,
             "the untrusted certificate named in the log")
    dc.append(mail(subject="not yet")[1])
    time.sleep(1.0)
    check_eq(len(created_msgs(w)), 0, "nothing fetched without trust")
    w.kill("imap")
    # verification off (a test server): STARTTLS and AUTHENTICATE PLAIN
    c = w.conf_extra["connector mail1"]
    c["imap_verify"] = "no"
    w.write_config()
    w.start("imap")
    wait_for(lambda: len(created_msgs(w)) == 1, 20, "the mail over TLS")
    with open(w.procs["imap"].logpath) as f:
        check("imap ready" in f.read(), "ready over STARTTLS")
    with open(dc.log) as f:
        log_text = f.read()
    check("method=PLAIN" in log_text and "TLS" in log_text,
          "dovecot saw AUTHENTICATE PLAIN over TLS", log_text[-2000:])


TESTS = {
    "new_mail_arrives_through_idle": test_new_mail_arrives_through_idle,
    "sigkill_refetches_nothing_and_misses_nothing":
        test_sigkill_refetches_nothing_and_misses_nothing,
    "dovecot_restart_and_uidvalidity_change":
        test_dovecot_restart_and_uidvalidity_change,
    "reply_by_smtp_threads_and_answer_joins":
        test_reply_by_smtp_threads_and_answer_joins,
    "smtp_failures_retry_then_fail": test_smtp_failures_retry_then_fail,
    "poison_and_huge_mail_are_set_aside":
        test_poison_and_huge_mail_are_set_aside,
    "attachment_stored_and_downloadable":
        test_attachment_stored_and_downloadable,
    "starttls_checks_the_certificate_and_auth_plain":
        test_starttls_checks_the_certificate_and_auth_plain,
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
