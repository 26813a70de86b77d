#!/usr/bin/env python3
"""An example third-party inboxd connector: Python standard library and
redis-cli only (docs/connector-protocol.md).

The "channel" is a pair of JSON-lines files, standing in for any system
you can read messages from and write replies to:

  inbound file:  {"id": "msg-1", "from": "cust-17", "name": "Ann",
                  "text": "Where is my order?", "ts": 1790000000000}
  outbound file: {"to": "cust-17", "text": "...", "ref": "out:42"}

Each pass (a) appends an envelope to <prefix>:in for every inbound line
not seen yet (the read offset is kept in a state file only after XADD
succeeded; a line sent twice is dropped by the router, as `external_id` is
the line's own id), and (b) reads the replies for this connector from
<prefix>:out:<id> as consumer group "connector" (its own pending entries
first), writes each to the outbound file, reports a `sent` status envelope
and only then XACKs it.

Usage: jsonl_connector.py --id ID --inbound FILE --outbound FILE
           [--state FILE] [--prefix inbox] [--once] [redis-cli options...]
e.g.   jsonl_connector.py --id shop1 --inbound in.jsonl --outbound out.jsonl
           --once -- -h 127.0.0.1 -p 6379
"""

import argparse
import json
import os
import subprocess
import sys
import time

GROUP = "connector"


class Redis:
    def __init__(self, cli_args):
        self.base = ["redis-cli"] + cli_args

    def call(self, *args, json_out=False):
        argv = self.base + (["--json"] if json_out else []) + \
            [str(a) for a in args]
        cp = subprocess.run(argv, capture_output=True, timeout=30)
        out = cp.stdout.decode("utf-8")
        if cp.returncode != 0 or out.startswith("(error)") or \
                out.startswith("ERR") or out.startswith("Could not connect"):
            raise RuntimeError("redis-cli %s: %s %s" % (
                args[0], out.strip(), cp.stderr.decode().strip()))
        return json.loads(out) if json_out else out.strip()


def envelope(cid, kind, external_id, ts, contact, name, thread, text,
             **extra):
    env = {"v": 1, "connector": cid, "channel": "api", "kind": kind,
           "external_id": external_id, "ts": ts,
           "contact": {"external_id": contact, "name": name},
           "thread": thread, "text": text}
    env.update(extra)
    return json.dumps(env, ensure_ascii=False)


def ingest(r, a):
    """Publishes the inbound lines after the saved offset."""
    offset = 0
    if os.path.exists(a.state):
        with open(a.state) as f:
            offset = int(f.read().strip() or 0)
    if not os.path.exists(a.inbound):
        return 0
    n = 0
    with open(a.inbound, "rb") as f:
        f.seek(offset)
        for raw in f:
            if not raw.endswith(b"\n"):
                break                       # a line still being written
            line = raw.decode("utf-8").strip()
            if line:
                m = json.loads(line)
                env = envelope(a.id, "message", m["id"],
                               m.get("ts") or int(time.time() * 1000),
                               m["from"], m.get("name", ""), m["from"],
                               m.get("text", ""))
                r.call("XADD", a.prefix + ":in", "*", "env", env)
                n += 1
            offset += len(raw)
            with open(a.state + ".tmp", "w") as s:
                s.write(str(offset))
            os.replace(a.state + ".tmp", a.state)
    return n


def deliver(r, a):
    """Delivers this connector's replies; returns how many."""
    key = "%s:out:%s" % (a.prefix, a.id)
    try:
        r.call("XGROUP", "CREATE", key, GROUP, "0", "MKSTREAM")
    except RuntimeError as e:
        if "BUSYGROUP" not in str(e):
            raise
    done = 0
    for start in ("0", ">"):            # own pending entries first
        rep = r.call("XREADGROUP", "GROUP", GROUP, a.id, "COUNT", "100",
                     "STREAMS", key, start, json_out=True)
        if not rep:
            continue
        # --json: {"key": [[id, [field, value, ...]], ...]} or [[key, ...]]
        entries = rep[key] if isinstance(rep, dict) else rep[0][1]
        for eid, fields in entries:
            if not fields:
                r.call("XACK", key, GROUP, eid)   # deleted meanwhile
                continue
            f = dict(zip(fields[0::2], fields[1::2]))
            item = json.loads(f["out"])
            with open(a.outbound, "a", encoding="utf-8") as o:
                o.write(json.dumps({"to": item.get("thread"),
                                    "text": item.get("text"),
                                    "ref": item.get("ref")},
                                   ensure_ascii=False) + "\n")
                o.flush()
                os.fsync(o.fileno())
            ref = item.get("ref", "")
            status = envelope(a.id, "status", "status:%s:sent" % ref,
                              int(time.time() * 1000),
                              (item.get("contact") or {}).get(
                                  "external_id") or "unknown", "",
                              item.get("thread") or "unknown", "",
                              status="sent", reply_to=ref,
                              channel_message_id="file:%s" % eid)
            r.call("XADD", a.prefix + ":in", "*", "env", status)
            r.call("XACK", key, GROUP, eid)
            done += 1
    return done


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--id", required=True)
    p.add_argument("--inbound", required=True)
    p.add_argument("--outbound", required=True)
    p.add_argument("--state")
    p.add_argument("--prefix", default="inbox")
    p.add_argument("--once", action="store_true")
    p.add_argument("redis", nargs="*", help="redis-cli options")
    a = p.parse_args()
    a.state = a.state or a.inbound + ".offset"
    r = Redis(a.redis)
    while True:
        try:
            n, m = ingest(r, a), deliver(r, a)
            print("published %d, delivered %d" % (n, m), flush=True)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            print("connector %s: %s" % (a.id, e), file=sys.stderr)
            if a.once:
                return 1
        if a.once:
            return 0
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
