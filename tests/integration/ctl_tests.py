#!/usr/bin/env python3
"""inboxctl integration tests: backup, contacts export and import, cmd and
help, against a real redis-server, router, webhooks and gateway started by
tests/harness/inboxd_harness.py.

Usage: ctl_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error.
"""

import csv
import io
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    Redis, RedisError, TestFailure, check, check_eq, envelope, log, run_test,
    wait_for)

CONTACTS_CONF = {"contacts": {"fields": "company, plan"}}
SUMMARY = re.compile(r"^(\d+) created, (\d+) updated, (\d+) unchanged, "
                     r"(\d+) rejected$", re.M)


# --------------------------------------------------------------------------
# helpers

def out(cp):
    return cp.stdout.decode("utf-8")


def err(cp):
    return cp.stderr.decode("utf-8", "replace")


def summary(cp):
    """The (created, updated, unchanged, rejected) of an import report."""
    m = SUMMARY.findall(out(cp))
    check(len(m) == 1, "import printed no single summary line", out(cp),
          err(cp))
    return tuple(int(x) for x in m[0])


def pipeline(w, commands):
    """XADDs (lists of arguments) to Redis in one pipelined write."""
    r = Redis(w.redis_port)
    try:
        buf = []
        for args in commands:
            buf.append(b"*%d\r\n" % len(args))
            for a in args:
                a = a.encode() if isinstance(a, str) else a
                buf.append(b"$%d\r\n%s\r\n" % (len(a), a))
        r.sock.sendall(b"".join(buf))
        for _ in commands:
            rep = r._reply()
            if isinstance(rep, RedisError):
                raise TestFailure("redis: %s" % rep)
    finally:
        r.close()


def envelopes(batch, n, per_thread=1):
    """XADD commands of n envelopes on n // per_thread new threads."""
    cmds = []
    for i in range(n):
        t = "%s-%d" % (batch, i // per_thread)
        env = {"v": 1, "connector": "api1", "channel": "api",
               "kind": "message", "external_id": "m-%s-%d" % (batch, i),
               "ts": 1790000000000 + i, "thread": "t-" + t,
               "contact": {"external_id": "c-" + t, "name": "C" + t},
               "text": "message %d " % i + "x" * 500}
        cmds.append(("XADD", "inbox:in", "*", "env", json.dumps(env)))
    return cmds


def other_config(w, name, store_path=None, fields=None):
    """A copy of the world's config with another store path or other
    contact fields (for inboxctl only)."""
    with open(w.conf_path) as f:
        text = f.read()
    if store_path is not None:
        text = re.sub(r"(?m)^path = .*$", "path = %s" % store_path, text)
    if fields is not None:
        text = re.sub(r"(?m)^fields = .*$", "fields = %s" % fields, text)
    path = os.path.join(w.tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def ctl_with(w, conf, *args, input=None, check_rc=True):
    """inboxctl with another config file (the harness passes its own -c
    first; a second -c wins)."""
    return w.inboxctl("-c", conf, *args, input=input, check_rc=check_rc)


def export_json(w):
    cp = w.inboxctl("contacts", "export", "--json")
    try:
        v = json.loads(out(cp))
    except ValueError:
        raise TestFailure("contacts export --json printed no JSON: %r"
                          % cp.stdout[:500])
    check(isinstance(v, list), "export --json is not an array", v)
    return v


def by_email(contacts):
    return {c["email"].lower(): c for c in contacts if c.get("email")}


def write_csv(w, name, rows, raw=None):
    """Writes rows (lists) as RFC 4180 CSV (Python's csv module), or raw
    bytes; returns the path."""
    path = os.path.join(w.tmp, name)
    if raw is None:
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator="\r\n").writerows(rows)
        raw = buf.getvalue().encode("utf-8")
    with open(path, "wb") as f:
        f.write(raw)
    return path


# --------------------------------------------------------------------------

def test_backup_while_ingesting(w):
    """A hot copy taken while the router ingests holds every conversation
    committed before it, as one consistent snapshot."""
    pipeline(w, envelopes("a", 400, per_thread=2))
    before = wait_for(lambda: (lambda c: c if len(c) == 200 else None)(
        w.conversations("all")), 60, "200 conversations stored")
    counts = {c["id"]: c["message_count"] for c in before}
    check_eq(sorted(counts.values()), [2] * 200, "messages before backup")
    # The router is busy with 3,000 more envelopes on new threads while the
    # copy is taken.
    pipeline(w, envelopes("b", 3000, per_thread=3))
    dest = os.path.join(w.tmp, "backup-1")
    cp = w.inboxctl("backup", dest)
    data = os.path.join(dest, "data.mdb")
    check(os.path.isfile(data), "backup wrote no data.mdb", out(cp))
    size = os.path.getsize(data)
    check(data in out(cp) and str(size) in out(cp),
          "backup does not say what it wrote (path and size %d)" % size,
          out(cp))
    after = len(w.conversations("all"))
    log("backup of %d bytes; %d conversations after it" % (size, after))

    # The copy opens as a store of its own.
    conf = other_config(w, "backup.conf", store_path=dest)
    cp = ctl_with(w, conf, "conversations", "--state", "all", "--json")
    copy = json.loads(out(cp))
    ids = sorted(c["id"] for c in copy)
    check(len(ids) >= 200, "backup lost conversations: %d of at least 200"
          % len(ids))
    check_eq(ids, list(range(1, len(ids) + 1)),
             "conversation ids in the copy (a snapshot has no gaps)")
    for c in copy:
        if c["id"] in counts:
            check_eq(c["message_count"], counts[c["id"]],
                     "messages of conversation %d in the copy" % c["id"])
        else:
            check(1 <= c["message_count"] <= 3, "a conversation in the copy "
                  "with %d messages" % c["message_count"], c)

    # The store went on: everything lands, and the copy stays as it was.
    wait_for(lambda: len(w.conversations("all")) == 1200, 120,
             "all 1200 conversations stored")
    cp = ctl_with(w, conf, "conversations", "--state", "all", "--json")
    check_eq(len(json.loads(out(cp))), len(ids), "copy changed afterwards")

    # An empty directory is fine; anything else is refused, clearly.
    empty = os.path.join(w.tmp, "backup-2")
    os.mkdir(empty)
    w.inboxctl("backup", empty)
    check(os.path.getsize(os.path.join(empty, "data.mdb")) > 0,
          "backup into an empty directory is empty")
    cp = w.inboxctl("backup", dest, check_rc=False)
    check_eq(cp.returncode, 1, "exit status of a backup into a non-empty "
             "directory")
    check("not empty" in err(cp), "no clear error for a non-empty "
          "directory", err(cp))
    afile = os.path.join(w.tmp, "a-file")
    with open(afile, "w") as f:
        f.write("x")
    cp = w.inboxctl("backup", afile, check_rc=False)
    check_eq(cp.returncode, 1, "exit status of a backup onto a file")
    check("not a directory" in err(cp), "no clear error for a file", err(cp))
    cp = w.inboxctl("backup", check_rc=False)
    check_eq(cp.returncode, 2, "exit status of backup without PATH")


ROWS = [
    ["name", "email", "phone", "username", "field:company", "plan"],
    ["Анна Петрова", "anna@example.com", "+7 900 123-45-67", "anna",
     "ООО «Ромашка»", "gold"],
    ["Smith, John \"Jack\"", "jack@example.com", "", "", "ACME, Inc.",
     ""],
    ["  Spaced  ", "", "+1 555 000 1111", "spacey", "Two\r\nLines", "basic"],
    ["Ёлкин Пётр", "PETR@Example.RU", "", "", "", "\"quoted\""],
]


def test_contacts_round_trip(w):
    """Contacts with Cyrillic names, commas, quotes, line breaks and custom
    fields survive export and import; importing an export changes
    nothing."""
    # One contact from a channel too (it has a channel and an external id).
    w.post_ok("api1", envelope("m-1", "t-1", contact={
        "external_id": "tg-1", "name": "Из канала",
        "email": "chan@example.com", "phone": "+44 20 7946 0000"}))
    wait_for(lambda: len(w.conversations("all")) == 1, 30, "conversation")
    path = write_csv(w, "in.csv", ROWS)
    cp = w.inboxctl("contacts", "import", path)
    check_eq(summary(cp), (4, 0, 0, 0), "first import")
    for i in range(2, 6):
        check(re.search(r"(?m)^row %d%s: created contact \d+$" % (
            i, " \\(line 6\\)" if i == 5 else ""), out(cp)),
              "no 'created' line for row %d" % i, out(cp))

    cp = w.inboxctl("contacts", "export")
    first = cp.stdout
    recs = list(csv.reader(io.StringIO(first.decode("utf-8"), newline="")))
    check_eq(recs[0], ["id", "name", "email", "phone", "username", "channel",
                       "created", "field:company", "field:plan"],
             "export header")
    check_eq(len(recs), 6, "export rows (header and five contacts)")
    got = {r[2] or r[3]: r for r in recs[1:]}
    for row in ROWS[1:]:
        key = row[1] or row[2]
        check(key in got, "contact %s not exported" % key, got)
        r = got[key]
        check_eq([r[1], r[2], r[3], r[4], r[7], r[8]], row,
                 "exported cells of %s" % key)
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", r[6]),
              "created is not an ISO 8601 time", r)
    check_eq(got["chan@example.com"][5], "api", "channel of the channel "
             "contact")
    check(b"\r\n" in first and first.count(b"\r\n") >= 6,
          "export lines do not end in CRLF")

    js = {c["email"] or c["phone"]: c for c in export_json(w)}
    check_eq(js["anna@example.com"]["name"], "Анна Петрова", "JSON name")
    check_eq(js["anna@example.com"]["fields"],
             {"company": "ООО «Ромашка»", "plan": "gold"}, "JSON fields")
    check_eq(js["+1 555 000 1111"]["fields"],
             {"company": "Two\r\nLines", "plan": "basic"},
             "JSON fields with a line break")
    check_eq(len(js), 5, "JSON export count")

    # Import what was exported: nothing changes.
    path = os.path.join(w.tmp, "export.csv")
    w.inboxctl("contacts", "export", "--csv", "-o", path)
    with open(path, "rb") as f:
        check_eq(f.read(), first, "export -o FILE and stdout export")
    check_eq(os.stat(path).st_mode & 0o777, 0o600, "export file mode")
    cp = w.inboxctl("contacts", "import", path)
    check_eq(summary(cp), (0, 0, 5, 0), "import of the export")
    cp = w.inboxctl("contacts", "import", path, "--json")
    rep = json.loads(out(cp))
    check_eq([r["status"] for r in rep["rows"]], ["unchanged"] * 5,
             "JSON report statuses")
    check_eq((rep["created"], rep["updated"], rep["unchanged"],
              rep["rejected"]), (0, 0, 5, 0), "JSON report counts")
    check_eq(w.inboxctl("contacts", "export").stdout, first,
             "export after importing the export")


def test_contacts_import_updates_and_rejects(w):
    """Import matches by e-mail (any case) or phone, creates the rest, and
    rejects each bad row with its row number while the good rows land."""
    w.post_ok("api1", envelope("m-1", "t-1", contact={
        "external_id": "tg-1", "name": "Ann", "email": "Ann@Example.com"}))
    w.post_ok("api1", envelope("m-2", "t-2", contact={
        "external_id": "wa-2", "name": "Phone", "phone": "+1 555 010 2030"}))
    wait_for(lambda: len(w.conversations("all")) == 2, 30, "conversations")
    before = by_email(export_json(w))
    ann_id = before["ann@example.com"]["id"]
    phone_id = [c for c in export_json(w)
                if c.get("phone") == "+1 555 010 2030"][0]["id"]

    raw = (
        "\ufeffName,EMAIL,Phone,field:Company,shoe_size\r\n"  # row 1
        "Ann Updated,ann@example.com,,ACME,\r\n"              # 2 updated
        "Phone Person,,15550102030,,\r\n"                     # 3 updated
        "New Person,new@example.com,,\"New, Co\",\r\n"        # 4 created
        "Nobody,,,Nowhere,\r\n"                               # 5 no match key
        "Bad Mail,not-an-email,,,\r\n"                        # 6 bad email
        "\"Bro\"ken,x@example.com,,,\r\n"                     # 7 quoting
        "Short,short@example.com\r\n"                         # 8 cells
        "Shoe,shoe@example.com,,,42\r\n"                      # 9 field
        "Tiny,,123,,\r\n"                                     # 10 phone
        "\"Unclosed,u@example.com,,,\r\n"                     # 11 quoting
        "Last,last@example.com,,,\r\n"                        # 12 created
    ).encode("utf-8")
    path = write_csv(w, "in.csv", None, raw=raw)

    # A dry run sends nothing.
    cp = w.inboxctl("contacts", "import", path, "--dry-run", check_rc=False)
    check_eq(cp.returncode, 1, "dry run exit status with bad rows")
    check("dry run: 4 valid, 7 rejected" in out(cp), "dry run summary",
          out(cp))
    check_eq(by_email(export_json(w)), before, "contacts after a dry run")

    cp = w.inboxctl("contacts", "import", path, check_rc=False)
    text = out(cp)
    check_eq(cp.returncode, 1, "import exit status with bad rows")
    check_eq(summary(cp), (2, 2, 0, 7), "import summary")
    want = {
        2: r"updated contact %d: fields, name, email$" % ann_id,
        3: r"updated contact %d: name, phone$" % phone_id,
        4: r"created contact \d+$",
        5: r"rejected: no email and no phone",
        6: r"rejected: email: 'not-an-email' is not an e-mail address",
        7: r"rejected: text after the closing quote of cell 1",
        8: r"rejected: 2 cells where the header has 5",
        9: r"rejected: column 'shoe_size': not a contact field",
        10: r"rejected: phone: '123' has fewer than 5",
        11: r"rejected: unbalanced quotes",
        12: r"created contact \d+$",
    }
    for row, pat in want.items():
        check(re.search(r"(?m)^row %d: %s" % (row, pat), text),
              "report line of row %d does not match %r" % (row, pat), text)

    after = by_email(export_json(w))
    check_eq(after["ann@example.com"]["id"], ann_id, "matched by e-mail")
    check_eq(after["ann@example.com"]["name"], "Ann Updated", "updated name")
    check_eq(after["ann@example.com"]["fields"], {"company": "ACME"},
             "updated field (header 'field:Company' is field 'company')")
    ph = [c for c in export_json(w) if c["id"] == phone_id][0]
    check_eq(ph["name"], "Phone Person", "matched by phone")
    check_eq(after["new@example.com"]["fields"], {"company": "New, Co"},
             "created contact's field")
    check("last@example.com" in after, "the row after broken quoting did "
          "not land", after)
    for bad in ("x@example.com", "short@example.com", "shoe@example.com",
                "u@example.com"):
        check(bad not in after, "rejected row %s was imported" % bad)
    check_eq(len(export_json(w)), 4, "contacts after the import")

    # A reason from the router: inboxctl's config knows a field the
    # router's does not.
    conf = other_config(w, "ctl.conf", fields="company, plan, shoe_size")
    path = write_csv(w, "shoe.csv", [["email", "shoe_size"],
                                     ["shoe@example.com", "42"],
                                     ["ann@example.com", ""]])
    cp = ctl_with(w, conf, "contacts", "import", path, "--json",
                  check_rc=False)
    check_eq(cp.returncode, 1, "exit status when the router refuses a row")
    rep = json.loads(out(cp))
    check_eq([r["status"] for r in rep["rows"]], ["rejected", "unchanged"],
             "statuses when the router refuses a row")
    check_eq(rep["rows"][0]["row"], 2, "row number of the refused row")
    check_eq(rep["rows"][0].get("code"), "bad_request", "router's code")
    check("not a contact field" in rep["rows"][0]["reason"],
          "router's reason", rep)

    # A column without a name: its empty cells are ignored, others not.
    p = write_csv(w, "noname.csv", None,
                  raw=b"email,\nz@example.com,x\ny@example.com,\n")
    cp = w.inboxctl("contacts", "import", p, check_rc=False)
    check(re.search(r"(?m)^row 2: rejected: cell 2: its column has no "
                    r"name", out(cp)), "a cell under no name", out(cp))
    check(re.search(r"(?m)^row 3: created contact", out(cp)),
          "an empty cell under no name is not ignored", out(cp))

    # File-level problems stop before anything is sent.
    for name, raw, part in [
            ("empty.csv", b"", "a header row is required"),
            ("nokey.csv", b"name,company\nA,B\n", "neither an email nor"),
            ("dup.csv", b"email,EMAIL\na@b.c,d@e.f\n", "twice")]:
        p = write_csv(w, name, None, raw=raw)
        cp = w.inboxctl("contacts", "import", p, check_rc=False)
        check_eq(cp.returncode, 1, "exit status for %s" % name)
        check(part in err(cp), "error for %s" % name, err(cp))
    big = os.path.join(w.tmp, "big.csv")
    with open(big, "wb") as f:
        f.write(b"email\n")
        f.truncate(65 * 1024 * 1024)
    cp = w.inboxctl("contacts", "import", big, check_rc=False)
    check_eq(cp.returncode, 1, "exit status for a file too large")
    check("larger than 64 MiB" in err(cp), "error for a large file", err(cp))
    p = write_csv(w, "long.csv", None,
                  raw=b"email,name\na@b.c," + b"n" * 70000 + b"\nok@b.c,ok\n")
    cp = w.inboxctl("contacts", "import", p, check_rc=False)
    check(re.search(r"(?m)^row 2: rejected: record too long", out(cp)),
          "a too long row is not rejected by name", out(cp))
    check(re.search(r"(?m)^row 3: created contact", out(cp)),
          "the row after a too long one did not land", out(cp))


def test_cmd_and_usage(w):
    """inboxctl cmd sends any router command and prints its answer; a
    refused command exits 1 with the router's reason; usage errors exit 2."""
    w.add_agent("alice", "pw-alice-1", role="agent")
    w.post_ok("api1", envelope("m-1", "t-1"))
    conv = wait_for(lambda: w.conversations("all"), 30, "conversation")[0]
    cid = conv["id"]

    cp = w.inboxctl("cmd", "conversation.close", json.dumps({"id": cid}))
    ans = json.loads(out(cp))
    check_eq(ans["event"], "conversation.updated", "answer event")
    check_eq(ans["data"]["conversation"]["state"], "closed", "answer state")
    check(re.match(r"^\d+-\d+$", ans["seq"]), "answer seq", ans)
    check_eq([c["id"] for c in w.conversations("closed")], [cid],
             "closed feed after cmd conversation.close")

    cp = w.inboxctl("cmd", "conversation.close", '{"id": %d}' % cid,
                    check_rc=False)
    check_eq(cp.returncode, 1, "exit status of an illegal transition")
    check_eq(out(cp), "", "stdout of a refused command")
    check("illegal_transition" in err(cp), "router's code on stderr",
          err(cp))
    cp = w.inboxctl("cmd", "conversation.close", '{"id": 999}',
                    check_rc=False)
    check_eq(cp.returncode, 1, "exit status for an unknown conversation")
    check("not_found" in err(cp) and "no conversation 999" in err(cp),
          "router's reason for an unknown conversation", err(cp))
    cp = w.inboxctl("cmd", "conversation.explode", check_rc=False)
    check_eq(cp.returncode, 1, "exit status of an unknown command type")
    check("unknown_type" in err(cp), "unknown type reason", err(cp))

    # --as: the command runs as that agent.
    cp = w.inboxctl("cmd", "--as", "alice", "note.add",
                    json.dumps({"id": cid, "text": "заметка"}))
    ans = json.loads(out(cp))
    check_eq(ans["event"], "note.created", "note answer")
    check_eq(ans["data"]["message"]["author"], "alice", "note author")
    cp = w.inboxctl("cmd", "template.put", "--as", "alice",
                    '{"name": "t1", "text": "hi"}', check_rc=False)
    check_eq(cp.returncode, 1, "an agent may not keep templates")
    check("forbidden" in err(cp), "forbidden reason", err(cp))
    cp = w.inboxctl("cmd", "--as", "ghost", "conversation.reopen",
                    '{"id": %d}' % cid, check_rc=False)
    check_eq(cp.returncode, 1, "exit status for an unknown actor")
    check("not an agent" in err(cp), "unknown actor reason", err(cp))
    w.inboxctl("cmd", "conversation.reopen", '{"id": %d}' % cid)
    check_eq([c["id"] for c in w.conversations("open")], [cid],
             "reopened by cmd")

    for args, part in [
            (["cmd", "conversation.close", "{not json"], "not a JSON object"),
            (["cmd", "conversation.close", "[1]"], "not a JSON object"),
            (["cmd", "conversation.close", '{"type": "x"}'], "set by inboxctl"),
            (["cmd"], "which command"),
            (["cmd", "a", "{}", "extra"], "unexpected argument"),
            (["frobnicate"], "unknown command 'frobnicate'"),
            (["contacts", "export", "--xml"], "unknown option '--xml'"),
            (["contacts", "export", "--csv", "--json"], "not both"),
            (["contacts", "import"], "which file"),
            (["contacts"], "export or import"),
            (["events", "tail", "--count", "x"], "--count"),
            (["conversations", "--state"], "needs a value")]:
        cp = w.inboxctl(*args, check_rc=False)
        check_eq(cp.returncode, 2, "exit status of inboxctl %s" % args)
        check(part in err(cp), "error of inboxctl %s" % args, err(cp))
        if part not in ("not a JSON object", "set by inboxctl", "--count"):
            check("usage: inboxctl" in err(cp), "no usage for %s" % args,
                  err(cp))

    # agent add goes through the same path: a refusal names the code.
    cp = w.inboxctl("agent", "add", "alice", "--password", "x",
                    check_rc=False)
    check_eq(cp.returncode, 1, "exit status of adding an existing agent")
    check("exists" in err(cp), "reason for an existing agent", err(cp))
    cp = w.inboxctl("agent", "passwd", "alice", "--role", "admin",
                    "--password", "x", check_rc=False)
    check_eq(cp.returncode, 2, "agent passwd takes no --role")

    # help lists every command, with or without a config.
    for argv in ([w.exe["inboxctl"], "help"],
                 [w.exe["inboxctl"], "--help"],
                 [w.exe["inboxctl"], "-c", w.conf_path, "help"]):
        cp = subprocess.run(argv, capture_output=True, timeout=30)
        check_eq(cp.returncode, 0, "exit status of %s" % argv)
        for word in ("agent add", "agent passwd", "conversations",
                     "events tail", "contacts export", "contacts import",
                     "cmd TYPE", "backup PATH", "help"):
            check(word in out(cp), "help lacks %r" % word, out(cp))


def test_connectors_status(w):
    """inboxctl connectors shows each connector's queued and unread
    replies and its newest dead letter, and the router's backlog."""
    w.add_agent("alice", "pw-alice-1", role="agent")
    w.post_ok("api1", envelope("m-1", "t-1"))
    conv = wait_for(lambda: w.conversations("all"), 30, "conversation")[0]
    for text in ("one", "two"):
        w.inboxctl("cmd", "--as", "alice", "message.send",
                   json.dumps({"id": conv["id"], "text": text}))
    # an envelope of sec1 the router refuses, then a newer one
    for ext in ("bad-1", "bad-2"):
        w.redis_cli("XADD", "inbox:in", "*", "env", json.dumps(
            {"v": 1, "connector": "sec1", "channel": "api",
             "kind": "message", "external_id": ext}))

    def status():
        return json.loads(out(w.inboxctl("connectors", "--json")))
    st = wait_for(lambda: (lambda s: s if all(
        c["last_dead"] for c in s["connectors"] if c["id"] == "sec1")
        else None)(status()), 20, "sec1's dead letter")
    by = {c["id"]: c for c in st["connectors"]}
    check("api1" in by and "sec1" in by, "both connectors", st)
    check_eq((by["api1"]["out"]["length"], by["api1"]["out"]["lag"],
              by["api1"]["out"]["pending"]), (2, 2, 0),
             "api1: two replies queued, none read (no sender for api)")
    check_eq(by["api1"]["last_dead"], None, "api1 has no dead letter")
    d = by["sec1"]["last_dead"]
    check(d["reason"] != "" and d["at"] > 0, "sec1's dead letter", d)
    dead = w.redis("XREVRANGE", "inbox:dead", "+", "-", "COUNT", "1")
    check_eq(d["id"], dead[0][0].decode() if isinstance(dead[0][0], bytes)
             else dead[0][0], "the newest dead letter")
    check_eq(st["inbound"]["lag"], 0, "router read everything")
    text = out(w.inboxctl("connectors"))
    check("inbound:" in text and "sec1" in text and d["reason"][:20] in text,
          "table output", text)
    row = [ln for ln in text.splitlines() if ln.startswith("api1 ")]
    check(len(row) == 1 and row[0].split()[3:6] == ["2", "2", "0"] and
          row[0].rstrip().endswith(" -"), "api1's row", text)


def test_restore_with_and_without_replay(w):
    """restore refuses a store in use, puts a backup in place (keeping the
    replaced file), and with --replay-inbound brings back the messages
    received after the backup; an unreadable backup is refused with its
    reason and changes nothing."""
    pipeline(w, envelopes("a", 20, per_thread=2))
    wait_for(lambda: len(w.conversations("all")) == 10, 30,
             "10 conversations")
    dest = os.path.join(w.tmp, "bk")
    w.inboxctl("backup", dest)
    pipeline(w, envelopes("b", 10, per_thread=2))
    wait_for(lambda: len(w.conversations("all")) == 15, 30,
             "15 conversations after the backup")

    cp = w.inboxctl("restore", dest, check_rc=False)
    check_eq(cp.returncode, 1, "restore while the router runs")
    check("stop inbox-router" in err(cp), "says what to stop", err(cp))
    check_eq(len(w.conversations("all")), 15, "nothing changed")

    w.stop("gateway")
    w.stop("router")
    bad = os.path.join(w.tmp, "not-a-backup")
    os.makedirs(bad)
    with open(os.path.join(bad, "data.mdb"), "wb") as f:
        f.write(b"garbage" * 1000)
    cp = w.inboxctl("restore", bad, check_rc=False)
    check_eq(cp.returncode, 1, "restore of garbage")
    check("not a readable store" in err(cp), "names the problem", err(cp))
    check_eq(len(w.conversations("all")), 15, "garbage changed nothing")
    cp = w.inboxctl("restore", "--json", dest)
    res = json.loads(out(cp))
    check(res["replaced"] and os.path.isfile(res["replaced"]),
          "the replaced store is kept", res)
    check_eq(res["replay_inbound"], False, "no replay asked")
    check_eq(len(w.conversations("all")), 10, "the backup's 10 dialogs")
    w.start("router")
    w.start("gateway")
    pipeline(w, envelopes("c", 2, per_thread=2))
    wait_for(lambda: len(w.conversations("all")) == 11, 30,
             "a new message lands after the restore")
    check_eq(sorted(c["thread"] for c in w.conversations("all"))[-1],
             "t-c-0", "the new one is the only one added")

    # again, this time replaying what inbox:in got after the backup
    w.stop("gateway")
    w.stop("router")
    cp = w.inboxctl("restore", dest, "--replay-inbound")
    check("set back to" in out(cp), "says where inbox:in restarts", out(cp))
    check_eq(len(w.conversations("all")), 10, "the backup again")
    w.start("router")
    w.start("gateway")
    wait_for(lambda: len(w.conversations("all")) == 16, 30,
             "the 5 dialogs after the backup (and the later one) replayed")
    convs = w.conversations("all")
    check_eq(sum(c["message_count"] for c in convs), 32,
             "every message once: 20 + 10 + 2")


def test_connectors_add_disable_enable(w):
    """connectors add writes a section every process loads; disable makes
    the webhook answer 503 and the router refuse replies through it,
    enable brings both back; an edit that would not load is refused with
    the parser's message and leaves the file as it was."""
    import signal
    with open(w.conf_path, "rb") as f:
        before = f.read()
    cp = w.inboxctl("connectors", "add", "api9", "--channel", "api",
                    "--set", "team=support", "--dry-run")
    check("[connector api9]" in out(cp), "dry run shows the section",
          out(cp))
    with open(w.conf_path, "rb") as f:
        check_eq(f.read(), before, "a dry run writes nothing")
    cp = w.inboxctl("connectors", "add", "bad1", "--channel", "api",
                    "--set", "no_such_key=1", check_rc=False)
    check_eq(cp.returncode, 1, "an edit that would not load")
    check("no_such_key" in err(cp) and "nothing written" in err(cp),
          "the parser's message", err(cp))
    with open(w.conf_path, "rb") as f:
        check_eq(f.read(), before, "a refused edit writes nothing")

    cp = w.inboxctl("connectors", "add", "api9", "--channel", "api")
    check("restart inbox-webhooks" in out(cp), "says what to restart",
          out(cp))
    w.restart("webhooks")
    w.post_ok("api9", envelope("n-1", "t-n", text="hello"))
    conv = wait_for(lambda: [c for c in w.conversations("all")
                             if c["connector"] == "api9"], 20,
                    "a dialog of the new connector")[0]

    def reload_router():
        logpath = w.procs["router"].logpath
        with open(logpath) as f:
            n = f.read().count("SLA policies")
        w.procs["router"].popen.send_signal(signal.SIGHUP)
        wait_for(lambda: open(logpath).read().count("SLA policies") > n,
                 10, "the router reloaded")

    w.inboxctl("connectors", "disable", "api9")
    cp = w.inboxctl("connectors", "status", "--json")
    row = [c for c in json.loads(out(cp))["connectors"]
           if c["id"] == "api9"][0]
    check_eq(row["enabled"], False, "status says disabled")
    w.restart("webhooks")
    reload_router()
    st, js = w.post("api9", envelope("n-2", "t-n", text="again"))
    check_eq(st, 503, "a disabled connector's webhook")
    check_eq(js["error"]["code"], "disabled", "its error code")
    cp = w.inboxctl("cmd", "message.send", json.dumps(
        {"id": conv["id"], "text": "a reply"}), check_rc=False)
    check_eq(cp.returncode, 1, "a reply through a disabled connector")
    check("disabled" in err(cp), "refused as disabled", err(cp))
    w.post_ok("api1", envelope("n-3", "t-other", text="others go on"))

    w.inboxctl("connectors", "enable", "api9")
    w.restart("webhooks")
    reload_router()
    w.post_ok("api9", envelope("n-2", "t-n", text="again"))
    w.inboxctl("cmd", "message.send", json.dumps(
        {"id": conv["id"], "text": "a reply"}))
    wait_for(lambda: [c for c in w.conversations("all")
                      if c["id"] == conv["id"]][0]["message_count"] == 3,
             20, "both messages and the reply stored")


def test_templates_tags_teams_sla(w):
    """templates put/list/delete through the router (a text that does not
    render is refused with the reason), tags list, teams list (agents and
    connectors by team) and sla list (the [sla] sections), as tables and
    as JSON."""
    cp = w.inboxctl("templates", "list")
    check("no templates" in out(cp), "no templates yet", out(cp))
    w.inboxctl("templates", "put", "greet", "--text",
               "Hello {contact.name}, {agent.name} here")
    w.inboxctl("templates", "put", "bye", "--file", "-",
               input="Bye!\nSee you")
    cp = w.inboxctl("templates", "put", "bad", "--text", "Hi {nope}",
                    check_rc=False)
    check_eq(cp.returncode, 1, "a template that does not render")
    check("nope" in err(cp), "says what does not render", err(cp))
    got = json.loads(out(w.inboxctl("templates", "list", "--json")))
    check_eq({t["name"]: t["text"] for t in got},
             {"greet": "Hello {contact.name}, {agent.name} here",
              "bye": "Bye!\nSee you"}, "templates kept")
    table = out(w.inboxctl("templates", "list"))
    check("greet" in table and "Bye!..." in table, "the table", table)
    w.inboxctl("templates", "delete", "bye")
    cp = w.inboxctl("templates", "delete", "bye", check_rc=False)
    check_eq(cp.returncode, 1, "deleting an absent template")
    check("not_found" in err(cp), "refused as not_found", err(cp))
    check_eq([t["name"] for t in json.loads(out(w.inboxctl(
        "templates", "list", "--json")))], ["greet"], "after delete")

    w.add_agent("ann", "correct horse battery staple")
    w.add_agent("bob", "correct horse battery staple")
    w.inboxctl("agent", "set", "ann", "--teams", "support, billing")
    w.inboxctl("agent", "set", "bob", "--teams", "billing")
    teams = json.loads(out(w.inboxctl("teams", "list", "--json")))
    check_eq({t["team"]: (sorted(t["agents"]), t["connectors"])
              for t in teams},
             {"support": (["ann"], ["api1"]), "billing": (["ann", "bob"],
                                                          [])},
             "teams of agents and connectors")
    check("billing" in out(w.inboxctl("teams", "list")), "the table")

    w.post_ok("api1", envelope("m-1", "t-1"))
    conv = wait_for(lambda: w.conversations("all"), 20, "a dialog")[0]
    w.inboxctl("cmd", "conversation.tag", json.dumps(
        {"id": conv["id"], "add": ["#Billing", "VIP"]}))
    tags = json.loads(out(w.inboxctl("tags", "list", "--json")))
    check_eq(sorted(t["tag"] for t in tags), ["billing", "vip"],
             "tags, normalized")
    check("#vip" in out(w.inboxctl("tags", "list")), "the tags table")

    sla = json.loads(out(w.inboxctl("sla", "list", "--json")))
    check_eq([(p["name"], p["first_response_ms"], p["resolution_ms"],
               p["priority"]) for p in sla],
             [("urgent", 900000, None, "urgent"), ("std", 14400000,
                                                  172800000, None)],
             "the [sla] policies")
    table = out(w.inboxctl("sla", "list"))
    check("urgent" in table and "15m" in table, "the sla table", table)
    cp = w.inboxctl("templates", "frobnicate", check_rc=False)
    check_eq(cp.returncode, 2, "an unknown verb is a usage error")


TEAMS_SLA_CONF = {
    "connector api1": {"team": "support"},
    "sla urgent": {"first_response": "15m", "priority": "urgent"},
    "sla std": {"first_response": "4h", "resolution": "2d"},
}

TESTS = {
    "templates_tags_teams_sla":
        (test_templates_tags_teams_sla, TEAMS_SLA_CONF),
    "connectors_add_disable_enable":
        (test_connectors_add_disable_enable, None),
    "restore_with_and_without_replay":
        (test_restore_with_and_without_replay, None),
    "connectors_status": (test_connectors_status, None),
    "backup_while_ingesting": (test_backup_while_ingesting, None),
    "contacts_round_trip": (test_contacts_round_trip, CONTACTS_CONF),
    "contacts_import_updates_and_rejects": (
        test_contacts_import_updates_and_rejects, CONTACTS_CONF),
    "cmd_and_usage": (test_cmd_and_usage, None),
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
