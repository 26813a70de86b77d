#!/usr/bin/env python3
"""The Redis Cluster client (inbox/rt/cluster.c) against a real local
cluster: three redis-server masters (--cluster-enabled yes) on free
loopback ports in a private tmpdir, joined with `redis-cli --cluster
create`, driven through tests/unit/cluster/cluster_probe.

Usage: cluster_tests.py TEST_ID   (`--list` lists). Exit 0 pass, 1 fail,
99 harness error (a server or redis-cli did not do its part).
Env: INBOXD_BUILD (meson build dir, for cluster_probe).
"""

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))

from inboxd_harness import (  # noqa: E402
    EXIT_FAIL, EXIT_HARNESS, EXIT_PASS, HarnessError, Inboxd, Redis,
    RedisError, TestFailure, _reserve_port, _s, _say,
    _set_sanitizer_defaults, _tail, check, check_eq, envelope, log,
    wait_for)

NSLOTS = 16384
SANITIZER_MARKS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer",
                   b"runtime error:")


# --------------------------------------------------------------------------
# Hash slots, computed here independently of the C code (the test checks
# them against CLUSTER KEYSLOT too).

def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xffff
        table.append(crc)
    return table


CRC16_TABLE = _crc16_table()


def crc16(data):
    """CRC16-CCITT as XMODEM computes it (the cluster spec's checksum)."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[(crc >> 8) ^ b]
    return crc


def keyslot(key):
    k = key.encode()
    i = k.find(b"{")
    if i >= 0:
        j = k.find(b"}", i + 1)
        if j > i + 1:
            k = k[i + 1:j]
    return crc16(k) % NSLOTS


def tags_for(slots):
    """{slot: tag} with a short tag hashing to each slot asked for."""
    want = set(slots)
    out = {}
    i = 0
    while want:
        t = "t%d" % i
        s = keyslot("{%s}" % t)
        if s in want:
            out[s] = t
            want.discard(s)
        i += 1
    return out


# --------------------------------------------------------------------------
# The cluster

class Node:
    def __init__(self, cl, i):
        self.i = i
        self.port, f1 = _reserve_port()
        self.bus, f2 = _reserve_port()
        cl.port_files += [f1, f2]
        self.dir = os.path.join(cl.tmp, "node%d" % i)
        os.makedirs(self.dir)
        self.logpath = os.path.join(self.dir, "redis.log")
        self.popen = None
        self.id = None
        self.starts = 0

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.starts += 1
        argv = ["redis-server", "--port", str(self.port),
                "--cluster-port", str(self.bus), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                "--dir", self.dir, "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--protected-mode", "no",
                "--logfile", self.logpath]
        out = open(os.path.join(self.dir, "redis-%d.out" % self.starts),
                   "wb")
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT,
                                      cwd=self.dir)
        out.close()
        deadline = time.monotonic() + 20
        while True:
            if self.popen.poll() is not None:
                raise HarnessError("redis-server on %d exited with %s at "
                                   "start" % (self.port,
                                              self.popen.returncode))
            try:
                if self.cmd("PING") == "PONG":
                    return
            except (OSError, RedisError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise HarnessError("redis-server on %d not answering PING"
                                   % self.port)
            time.sleep(0.05)

    def kill(self, sig=signal.SIGKILL):
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def cmd(self, *args):
        """One command over a fresh connection (no redirection); decoded.
        An error reply raises RedisError."""
        r = Redis(self.port, timeout=5)
        try:
            return _s(r.command(*args))
        finally:
            r.close()

    def cli(self, *args):
        """redis-cli -p PORT ARGS (no -c: no redirection followed)."""
        cp = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p",
                             str(self.port)] + [str(a) for a in args],
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=20)
        if cp.returncode != 0:
            raise HarnessError("redis-cli -p %d %s: rc %d: %s" % (
                self.port, args, cp.returncode,
                cp.stderr.decode(errors="replace")))
        return cp.stdout.decode("utf-8", "replace").strip()

    def info(self, section):
        out = {}
        for ln in self.cmd("INFO", section).splitlines():
            if ":" in ln and not ln.startswith("#"):
                k, v = ln.split(":", 1)
                out[k] = v
        return out

    def stat(self, section, name, field):
        """A count from INFO commandstats / errorstats (0 when absent)."""
        v = self.info(section).get(name)
        if v is None:
            return 0
        for kv in v.split(","):
            k, _, n = kv.partition("=")
            if k == field:
                return int(n)
        return 0

    def owners(self):
        """This node's view: a list of NSLOTS ports (None: unassigned)."""
        table = [None] * NSLOTS
        for rng in self.cmd("CLUSTER", "SLOTS"):
            for s in range(rng[0], rng[1] + 1):
                table[s] = int(rng[2][1])
        return table


class Cluster:
    def __init__(self, name):
        self.build = os.environ.get("INBOXD_BUILD")
        if not self.build:
            raise HarnessError("INBOXD_BUILD is not set")
        self.probe_exe = os.path.join(self.build, "tests", "unit",
                                      "cluster", "cluster_probe")
        if not os.access(self.probe_exe, os.X_OK):
            raise HarnessError("cluster_probe not built: %s"
                               % self.probe_exe)
        for tool in ("redis-server", "redis-cli"):
            if not shutil.which(tool):
                raise HarnessError("%s not in PATH" % tool)
        safe = "".join(c if c.isalnum() else "-" for c in name)[:40]
        self.tmp = tempfile.mkdtemp(prefix="inboxd-it-%s-" % safe)
        self.port_files = []
        self.probes = []
        self.failed = False
        self.nodes = [Node(self, i) for i in range(3)]
        self.seeds = ", ".join(n.addr for n in self.nodes)
        _set_sanitizer_defaults()
        log("tmpdir", self.tmp, "ports", [n.port for n in self.nodes])

    def node_at(self, port):
        return next(n for n in self.nodes if n.port == port)

    def create(self):
        for n in self.nodes:
            n.start()
        cp = subprocess.run(["redis-cli", "--cluster", "create"] +
                            [n.addr for n in self.nodes] +
                            ["--cluster-replicas", "0", "--cluster-yes"],
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=60)
        with open(os.path.join(self.tmp, "cluster-create.out"), "wb") as f:
            f.write(cp.stdout + cp.stderr)
        if cp.returncode != 0:
            raise HarnessError("redis-cli --cluster create: rc %d: %s" % (
                cp.returncode, (cp.stdout + cp.stderr).decode(
                    errors="replace")[-2000:]))
        for n in self.nodes:
            n.id = n.cmd("CLUSTER", "MYID")
        self.wait_ok()

    def wait_ok(self, timeout=30):
        """Every node says cluster_state:ok and all have the same full slot
        map; returns it (NSLOTS ports)."""
        maps = []

        def agreed():
            maps[:] = []
            for n in self.nodes:
                if "cluster_state:ok" not in n.cmd("CLUSTER", "INFO"):
                    return False
                maps.append(n.owners())
            return None not in maps[0] and \
                all(m == maps[0] for m in maps[1:])
        try:
            wait_for(agreed, timeout, "cluster_state:ok and one slot map "
                     "on every node")
        except TestFailure as e:
            raise HarnessError(str(e))
        return maps[0]

    def probe(self, name):
        p = Probe(self, name)
        self.probes.append(p)
        return p

    def probe_once(self, *args):
        """cluster_probe SEEDS ARGS...: (exit status, stdout line)."""
        cp = subprocess.run([self.probe_exe, self.seeds] + list(args),
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=60)
        check(not any(m in cp.stderr for m in SANITIZER_MARKS),
              "cluster_probe %s: sanitizer report" % (args,),
              cp.stderr.decode(errors="replace")[-4000:])
        return cp.returncode, cp.stdout.decode(errors="replace").strip()

    def cleanup(self):
        for p in self.probes:
            p.kill()
        for n in self.nodes:
            n.kill()
        for path in self.port_files:
            try:
                os.unlink(path)
            except OSError:
                pass
        if self.failed:
            for n in self.nodes:
                _say("\n===== node%d (port %d) redis.log =====" % (
                    n.i, n.port))
                _say(_tail(n.logpath, 40))
            for p in self.probes:
                _say("\n===== %s =====" % os.path.basename(p.errpath))
                _say(_tail(p.errpath, 200))
            _say("tmpdir kept: %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Probe:
    """A cluster_probe reading commands from stdin: one client (one slot
    table, one connection per master) across the test's steps."""

    def __init__(self, cl, name):
        self.errpath = os.path.join(cl.tmp, "probe-%s.log" % name)
        with open(self.errpath, "wb") as err:
            self.popen = subprocess.Popen(
                [cl.probe_exe, "-v", "-t", "2000", cl.seeds],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        self.buf = b""

    def _readline(self, what, timeout):
        deadline = time.monotonic() + timeout
        fd = self.popen.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TestFailure("cluster_probe: no answer to %s within "
                                  "%ds" % (what, timeout))
            data = os.read(fd, 65536)
            if not data:
                raise TestFailure("cluster_probe exited (status %s) before "
                                  "answering %s:\n%s" % (
                                      self.popen.wait(), what,
                                      _tail(self.errpath, 30)))
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def many(self, lines, timeout=60):
        """Sends the commands (in batches, so neither pipe fills up) and
        returns their answers."""
        out = []
        for i in range(0, len(lines), 200):
            batch = lines[i:i + 200]
            try:
                self.popen.stdin.write("".join(ln + "\n" for ln in batch)
                                       .encode())
                self.popen.stdin.flush()
            except BrokenPipeError:
                raise TestFailure("cluster_probe exited (status %s):\n%s" % (
                    self.popen.wait(), _tail(self.errpath, 30)))
            for ln in batch:
                out.append(self._readline(repr(ln), timeout))
        return out

    def __call__(self, line, timeout=30):
        return self.many([line], timeout)[0]

    def close(self):
        """Ends the probe (EOF) and checks it exited by itself without a
        sanitizer report."""
        self.popen.stdin.close()
        try:
            rc = self.popen.wait(30)
        except subprocess.TimeoutExpired:
            raise TestFailure("cluster_probe did not exit at EOF")
        with open(self.errpath, "rb") as f:
            err = f.read()
        check(not any(m in err for m in SANITIZER_MARKS) and rc in (0, 1),
              "cluster_probe exited with %s (sanitizer report?)" % rc,
              _tail(self.errpath, 60))
        return err

    def log_text(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


# --------------------------------------------------------------------------
# The checks

def random_key(rng):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
        "0123456789:._-{}{}{}"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))


def check_keyslots(cl, p, rng):
    """cluster_probe's slots, CLUSTER KEYSLOT and this file's keyslot()
    agree on fixed keys and 200 random ones (hash tags among them)."""
    keys = ["foo", "{user1000}.following", "{user1000}.followers",
            "foo{}{bar}", "foo{{bar}}zap", "inbox:{3}:in", "inbox:{3}:events",
            "{}", "{", "}", "a}b{c}", "foo{bar}{zap}"]
    keys += ["%s{%s}%s" % (random_key(rng).strip("{}"), random_key(rng)
                           .strip("{}") or "x", random_key(rng))
             for _ in range(60)]
    while len(keys) < 212:
        keys.append(random_key(rng))
    got = p.many(["keyslot " + k for k in keys])
    bad = []
    node = cl.nodes[0]
    for k, g in zip(keys, got):
        want = node.cmd("CLUSTER", "KEYSLOT", k)
        if g != str(want) or keyslot(k) != want:
            bad.append("%r: probe %s, CLUSTER KEYSLOT %s, python %s" % (
                k, g, want, keyslot(k)))
    check(not bad, "slots disagree", bad[:20])
    check_eq(got[1], got[2], "{user1000}.following and .followers")
    check_eq(got[5], got[6], "inbox:{3}:in and inbox:{3}:events")
    log("%d keys: the probe's slots match CLUSTER KEYSLOT" % len(keys))


def check_writes_land_on_owner(cl, p, owners, rng):
    """SET, GET and XADD through the client reach the master that owns
    each key's slot (read back there with redis-cli, which follows no
    redirection); multi-key commands on one hash tag work."""
    per_node = {n.port: [] for n in cl.nodes}
    i = 0
    while min(len(v) for v in per_node.values()) < 8:
        k = "own:%d:%d" % (i, rng.randrange(10 ** 6))
        i += 1
        if len(per_node[owners[keyslot(k)]]) < 8:
            per_node[owners[keyslot(k)]].append(k)
    for port, keys in per_node.items():
        n = cl.node_at(port)
        got = p.many(["set %s v-%s" % (k, k) for k in keys] +
                     ["node %s" % k for k in keys] +
                     ["get %s" % k for k in keys])
        check_eq(got, ["OK"] * len(keys) + [n.addr] * len(keys) +
                 ["v-%s" % k for k in keys], "set, node and get of keys "
                 "owned by %s" % n.addr)
        for k in keys:
            check_eq(n.cli("GET", k), "v-" + k, "redis-cli -p %d GET %s"
                     % (port, k))
        stream = "{%s}:events" % keys[0]
        sid = p("xadd %s field value" % stream)
        check(sid.count("-") == 1 and sid.replace("-", "").isdigit(),
              "XADD answered %r" % sid)
        check_eq(n.cli("XLEN", stream), "1", "XLEN %s on %s" % (stream,
                                                                n.addr))
        log("%s: 8 keys and a stream written where they belong" % n.addr)
    # Pipelined: 8 SETs then 8 GETs a node, interleaved across the
    # masters; a synchronous GET in the middle on a connection with
    # pipelined commands unread (it runs after the pipelined SET of its
    # key); then every reply in order.
    keys = [k for trio in zip(*per_node.values()) for k in trio]
    lines = ["append set %s p-%s" % (k, k) for k in keys] + \
        ["append get %s" % k for k in keys]
    check_eq(p.many(lines[:len(keys)] + ["get %s" % keys[0]] +
                    lines[len(keys):] + ["replies"]),
             ["queued"] * len(keys) + ["p-" + keys[0]] +
             ["queued"] * len(keys) +
             [" | ".join(["OK"] * len(keys) + ["p-" + k for k in keys])],
             "pipelined SETs and GETs on every master, a GET between")
    for k in keys:
        n = cl.node_at(owners[keyslot(k)])
        check_eq(n.cli("GET", k), "p-" + k, "redis-cli -p %d GET %s after "
                 "the pipeline" % (n.port, k))
    check_eq(p("replies"), "", "replies with nothing appended")
    log("%d pipelined SETs and GETs answered in order" % (2 * len(keys)))
    tag = "{%s}" % per_node[cl.nodes[1].port][0]
    check_eq(p("cmd %s MSET %sa 1 %sb 2" % (tag, tag, tag)), "OK",
             "MSET of two keys with one hash tag")
    check_eq(p("cmd %s MGET %sa %sb" % (tag, tag, tag)), "[1 2]",
             "MGET of two keys with one hash tag")
    check_eq(cl.nodes[1].cli("GET", tag + "b"), "2", "the tagged key on "
             "its owner")


def check_ask(cl, p, owners):
    """A half-migrated slot (MIGRATING on the source, IMPORTING on the
    target, one key moved with MIGRATE): a key already moved and a new key
    are answered through -ASK and ASKING on the target, a key not moved yet
    by the source, and the client's table still names the source. Returns
    (slot, source, target, keys)."""
    src, dst = cl.nodes[0], cl.nodes[1]
    tag = next(t for t in ("ask%d" % i for i in range(10 ** 6))
               if owners[keyslot("{%s}" % t)] == src.port)
    moved, stays, new = "{%s}moved" % tag, "{%s}stays" % tag, \
        "{%s}new" % tag
    slot = keyslot(moved)
    check_eq(p.many(["set %s m" % moved, "set %s s" % stays,
                     "node %s" % moved]), ["OK", "OK", src.addr],
             "keys written in slot %d before the migration" % slot)
    dst.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src.id)
    src.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.id)
    check_eq(src.cmd("MIGRATE", "127.0.0.1", dst.port, moved, 0, 5000),
             "OK", "MIGRATE %s" % moved)
    for n in cl.nodes:
        n.cmd("CONFIG", "RESETSTAT")
    got = p.many(["get %s" % moved, "get %s" % stays, "set %s n" % new,
                  "get %s" % new, "node %s" % moved])
    check_eq(got, ["m", "s", "OK", "n", src.addr],
             "get of the moved key, get of the staying key, set and get of "
             "a new key, node, in half-migrated slot %d" % slot)
    # Pipelined: -ASK answers among others; the target has a pipelined
    # command of its own unread when the client sends it ASKING.
    own = next("own:%d" % i for i in range(10 ** 6)
               if owners[keyslot("own:%d" % i)] == dst.port)
    got = p.many(["append get %s" % moved, "append set %s own" % own,
                  "append get %s" % stays, "append set %s n" % new,
                  "append get %s" % new, "append get %s" % own, "replies"])
    check_eq(got, ["queued"] * 6 + ["m | OK | s | OK | n | own"],
             "pipelined commands in half-migrated slot %d and on %s" % (
                 slot, dst.addr))
    check_eq(dst.cli("GET", own), "own", "redis-cli -p %d GET %s"
             % (dst.port, own))
    asks = src.stat("errorstats", "errorstat_ASK", "count")
    asking = dst.stat("commandstats", "cmdstat_asking", "calls")
    log("slot %d half migrated: %s answered -ASK %d times, %s got ASKING "
        "%d times" % (slot, src.addr, asks, dst.addr, asking))
    check_eq(asks, 6, "-ASK answers of the source (the moved key's GET, "
             "the new key's SET and GET, synchronous then pipelined)")
    check_eq(asking, asks, "ASKING commands on the target (one per ASK)")
    keys_on_dst = dst.cli("CLUSTER", "GETKEYSINSLOT", slot, 10).split()
    check_eq(sorted(keys_on_dst), sorted([moved, new]),
             "keys on the importing node %s" % dst.addr)
    check_eq(src.cli("CLUSTER", "GETKEYSINSLOT", slot, 10).split(),
             [stays], "keys left on the migrating node %s" % src.addr)
    return slot, src, dst, (moved, stays, new)


def check_moved_by_hand(cl, p, p2, slot, src, dst, keys):
    """Finishing the migration (the last key moved, CLUSTER SETSLOT NODE on
    every master): a client whose table still names the source follows
    -MOVED and its table names the target afterwards; so does another one
    with pipelined commands."""
    moved, stays, new = keys
    check_eq(src.cmd("MIGRATE", "127.0.0.1", dst.port, stays, 0, 5000),
             "OK", "MIGRATE %s" % stays)
    for n in (dst, src) + tuple(x for x in cl.nodes if x not in (src,
                                                                  dst)):
        n.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst.id)
    owners = cl.wait_ok()
    check_eq(owners[slot], dst.port, "owner of slot %d after SETSLOT NODE"
             % slot)
    for n in cl.nodes:
        n.cmd("CONFIG", "RESETSTAT")
    check_eq(p("node %s" % stays), src.addr, "the client's table before "
             "it meets -MOVED")
    got = p.many(["get %s" % stays, "node %s" % stays, "get %s" % moved,
                  "get %s" % new])
    check_eq(got, ["s", dst.addr, "m", "n"], "get, node, get, get in slot "
             "%d after the migration" % slot)
    movs = src.stat("errorstats", "errorstat_MOVED", "count")
    check_eq(movs, 1, "-MOVED answers of the old owner %s" % src.addr)
    check_eq(cl.probe_once("node", stays), (0, dst.addr), "a new client's "
             "table")
    for n in cl.nodes:
        n.cmd("CONFIG", "RESETSTAT")
    got = p2.many(["node %s" % stays, "append get %s" % stays,
                   "append get %s" % moved, "append get %s" % new,
                   "replies", "node %s" % stays])
    check_eq(got, [src.addr] + ["queued"] * 3 + ["s | m | n", dst.addr],
             "node, three pipelined gets and node of a second client")
    check_eq(src.stat("errorstats", "errorstat_MOVED", "count"), 3,
             "-MOVED answers to the three pipelined gets")
    p2.close()
    log("slot %d moved by hand to %s: one -MOVED followed" % (slot,
                                                             dst.addr))
    return owners


def check_moved_by_reshard(cl, p, owners):
    """redis-cli --cluster reshard moves 100 slots with their keys from one
    master to another; a client with the old table follows the first
    -MOVED, re-reads the whole map and finds every moved key without
    another -MOVED."""
    src, dst = cl.nodes[2], cl.nodes[0]
    src_slots = [s for s in range(NSLOTS) if owners[s] == src.port]
    tags = tags_for(src_slots)
    lines = ["set r:{%s} v%d" % (tags[s], s) for s in src_slots]
    got = p.many(lines)
    bad = [ln for ln, g in zip(lines, got) if g != "OK"]
    check(not bad, "%d of %d SETs failed" % (len(bad), len(lines)), bad[:10])
    log("one key in each of the %d slots of %s written" % (len(lines),
                                                           src.addr))
    cp = subprocess.run(["redis-cli", "--cluster", "reshard", src.addr,
                         "--cluster-from", src.id, "--cluster-to", dst.id,
                         "--cluster-slots", "100", "--cluster-yes"],
                        stdin=subprocess.DEVNULL, capture_output=True,
                        timeout=120)
    with open(os.path.join(cl.tmp, "cluster-reshard.out"), "wb") as f:
        f.write(cp.stdout + cp.stderr)
    if cp.returncode != 0:
        raise HarnessError("redis-cli --cluster reshard: rc %d: %s" % (
            cp.returncode, (cp.stdout + cp.stderr).decode(
                errors="replace")[-2000:]))
    new = cl.wait_ok()
    moved = [s for s in src_slots if new[s] == dst.port]
    check_eq(len(moved), 100, "slots moved by the reshard")
    for n in cl.nodes:
        n.cmd("CONFIG", "RESETSTAT")
    got = p.many(["get r:{%s}" % tags[s] for s in moved] +
                 ["node r:{%s}" % tags[s] for s in moved])
    check_eq(got, ["v%d" % s for s in moved] + [dst.addr] * len(moved),
             "gets and nodes of the keys in the 100 moved slots")
    movs = src.stat("errorstats", "errorstat_MOVED", "count")
    check_eq(movs, 1, "-MOVED answers of %s for 100 keys in 100 moved "
             "slots (the map is re-read at the first)" % src.addr)
    log("100 slots resharded from %s to %s: every key found after one "
        "-MOVED" % (src.addr, dst.addr))
    return new


def check_restarted_node(cl, p, owners):
    """A master killed with SIGKILL: the client answers NULL (no answer)
    in bounded time and goes on; once the master is back (empty: no
    persistence) the same client reconnects and writes there."""
    victim = cl.nodes[1]
    key = next("restart:%d" % i for i in range(10 ** 6)
               if owners[keyslot("restart:%d" % i)] == victim.port)
    other = next("other:%d" % i for i in range(10 ** 6)
                 if owners[keyslot("other:%d" % i)] != victim.port)
    check_eq(p.many(["set %s before" % key, "get %s" % key]),
             ["OK", "before"], "the key on %s before the kill"
             % victim.addr)
    check_eq(p.many(["append get %s" % key, "append set %s y" % other]),
             ["queued"] * 2, "appends before the kill")
    log("SIGKILL %s" % victim.addr)
    victim.kill()
    t0 = time.monotonic()
    got = p("get %s" % key, timeout=60)
    took = time.monotonic() - t0
    check_eq(got, "(no answer)", "GET of a key of the killed master")
    check(took < 15, "the client gave up after %.1fs" % took)
    # appended before the kill (one to the dead master), and after it
    # (not sent: the dead master refuses connections)
    got = p.many(["replies", "append get %s" % key,
                  "append get %s" % other, "replies"], timeout=60)
    check_eq(got, ["(no answer) | OK", "queued", "queued",
                   "(no answer) | y"], "pipelined commands for the dead "
             "master and another one")
    check("Connection refused" in p.log_text(), "the probe's log names the "
          "refused connection", _tail(p.errpath, 20))
    log("the client gave up on the dead master in %.2fs" % took)
    victim.start()
    cl.wait_ok(timeout=60)
    log("%s restarted, cluster_state:ok everywhere" % victim.addr)
    got = p.many(["set %s after" % key, "get %s" % key, "node %s" % key,
                  "set %s x" % other, "get %s" % other,
                  "append get %s" % key, "append get %s" % other,
                  "replies"])
    check_eq(got, ["OK", "after", victim.addr, "OK", "x", "queued",
                   "queued", "after | x"],
             "set, get and node of the restarted master's key, and another, "
             "and both pipelined")
    check_eq(victim.cli("GET", key), "after", "redis-cli -p %d GET %s"
             % (victim.port, key))
    # Restarted again while a pipelined GET is unread on the old
    # connection: a synchronous GET reconnects, a SET is pipelined on the
    # new connection; the old GET's reply is lost, so it is sent again
    # (after the SET) rather than taking the SET's reply.
    check_eq(p("append get %s" % key), "queued", "append before the kill")
    victim.kill()
    victim.start()
    cl.wait_ok(timeout=60)
    log("%s restarted again with a pipelined GET unread" % victim.addr)
    got = p.many(["get %s" % key, "append set %s z" % key, "replies"],
                 timeout=60)
    check_eq(got, ["(nil)", "queued", "z | OK"], "get after the restart "
             "(the data is gone), then the lost GET and the new SET")


def test_cluster_client(cl):
    seed = int.from_bytes(os.urandom(4), "big")
    log("random seed", seed)
    rng = random.Random(seed)
    cl.create()
    owners = cl.nodes[0].owners()
    log("cluster up:", ", ".join("%s %s" % (n.addr, n.id[:8])
                                 for n in cl.nodes))
    check_eq(cl.probe_once("keyslot", "foo"), (0, "12182"),
             "cluster_probe SEEDS keyslot foo")
    p = cl.probe("main")
    p2 = cl.probe("second")
    check_keyslots(cl, p, rng)
    check_writes_land_on_owner(cl, p, owners, rng)
    slot, src, dst, keys = check_ask(cl, p, owners)
    owners = check_moved_by_hand(cl, p, p2, slot, src, dst, keys)
    owners = check_moved_by_reshard(cl, p, owners)
    check_restarted_node(cl, p, owners)
    err = p.close().decode("utf-8", "replace")
    check("MOVED" in err and "ASK" in err, "the probe's debug log shows "
          "-MOVED and -ASK")


def migrate_slot(cl, slot, src, dst):
    """Moves slot from src to dst by hand, key by key (IMPORTING,
    MIGRATING, MIGRATE, SETSLOT NODE on every master), as a reshard does."""
    dst.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src.id)
    src.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.id)
    while True:
        keys = src.cmd("CLUSTER", "GETKEYSINSLOT", slot, 10)
        if not keys:
            break
        for k in keys:
            src.cmd("MIGRATE", "127.0.0.1", dst.port, k, 0, 10000)
            time.sleep(0.05)     # traffic meets a half-moved slot
    for n in [dst, src] + [x for x in cl.nodes if x not in (src, dst)]:
        n.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst.id)
    return cl.wait_ok()


def test_inboxd_on_cluster(cl):
    """The router, webhooks, gateway and inboxctl on a Redis Cluster of
    three masters (every key in one slot through the prefix's hash tag):
    messages flow from a webhook to a websocket; while that slot moves to
    another master under traffic, posts are answered 202 or 503 (never
    lost: each 202 is stored once), and every process follows the slot to
    its new master by itself."""
    import threading
    cl.create()
    w = Inboxd("inboxd-on-cluster", start=False, conf_extra={
        "redis": {"cluster": cl.seeds, "prefix": "{inbox}"}})
    try:
        for name in ("router", "webhooks", "gateway"):
            w.start(name)
        w.add_agent("ann", "correct horse battery staple")
        ws = w.ws_connect(w.token("ann", "correct horse battery staple"))
        for i in range(20):
            w.post_ok("api1", envelope("a-%d" % i, "t-%d" % (i % 5)))
        for i in range(20):
            ws.wait_event("message.created", lambda e, i=i: e["data"][
                "message"]["external_id"] == "a-%d" % i, timeout=20)
        slot = keyslot("{inbox}:in")
        owners = cl.nodes[0].owners()
        src = cl.node_at(owners[slot])
        dst = next(n for n in cl.nodes if n is not src)
        check(src.cmd("EXISTS", "{inbox}:in") == 1, "inbox:in on the "
              "slot's master %s" % src.addr)

        acked, refused, unknown = [], [], []
        stop = threading.Event()

        def poster():
            k = 0
            while not stop.is_set():
                ext = "b-%d" % k
                k += 1
                try:
                    st, _ = w.post("api1", envelope(ext, "t-%d" % (k % 7)),
                                   timeout=10)
                except OSError:
                    st = 0
                {202: acked, 503: refused}.get(st, unknown).append(ext)
                time.sleep(0.01)
        th = threading.Thread(target=poster)
        th.start()
        try:
            time.sleep(0.5)
            t0 = time.monotonic()
            owners = migrate_slot(cl, slot, src, dst)
            log("slot %d moved from %s to %s in %.1fs under traffic" % (
                slot, src.addr, dst.addr, time.monotonic() - t0))
            time.sleep(2)
        finally:
            stop.set()
            th.join()
        check_eq(owners[slot], dst.port, "the slot's new master")
        check(dst.cmd("EXISTS", "{inbox}:in") == 1 and
              src.cmd("DBSIZE") == 0, "the keys moved")
        log("%d posts acknowledged, %d refused (503) during the move, %d "
            "without an answer" % (len(acked), len(refused), len(unknown)))
        check(len(acked) > 20, "posts acknowledged around the move",
              len(acked))
        check_eq(unknown, [], "posts without an answer")
        # every acknowledged post is stored once and announced live; a
        # refused one is not stored
        w.post_ok("api1", envelope("c-0", "t-c"))
        ws.wait_event("message.created", lambda e: e["data"]["message"][
            "external_id"] == "c-0", timeout=30)
        want = set(acked) | {"c-0"} | {"a-%d" % i for i in range(20)}

        def announced():
            ws.pump(0.2)
            got = {e["data"]["message"]["external_id"]
                   for e in ws.find_events("message.created")}
            return got if want <= got else None
        seen = wait_for(announced, 60, "every acknowledged post announced")
        check_eq(seen, want, "messages announced: the acknowledged ones "
                 "(none refused with 503)")
        events = [e["data"]["message"]["external_id"]
                  for e in ws.find_events("message.created")]
        check_eq(len(events), len(seen), "each announced once")
        total = sum(c["message_count"] for c in w.conversations("all"))
        check_eq(total, len(want), "messages stored, each once")
        # the move reached each process: its log names the redirections
        for name in ("router", "webhooks", "gateway"):
            with open(w.procs[name].logpath, errors="replace") as f:
                text = f.read()
            hits = [ln for ln in text.splitlines() if any(
                m in ln for m in ("MOVED", "ASK", "UNBLOCKED", "TRYAGAIN",
                                  "reconnecting"))]
            log("%s: %d log lines about the move, e.g. %s" % (
                name, len(hits), hits[:1]))
            if name != "webhooks":   # it may have posted nothing then
                check(hits, "%s saw the slot move" % name)
        for name in ("router", "webhooks", "gateway"):
            w.assert_running(name)
    except BaseException:
        w.failed = True
        raise
    finally:
        w.cleanup()


def shard_of(connector, thread, n):
    """inbox_shard_of, computed here independently: FNV-1a (32 bits) of
    connector, a NUL and thread, mod n."""
    h = 2166136261
    for b in connector.encode() + b"\0" + thread.encode():
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h % n


def tg_update(uid, chat, text):
    return {"update_id": uid, "message": {
        "message_id": uid, "date": 1790000000,
        "from": {"id": chat, "is_bot": False, "first_name": "C%d" % chat},
        "chat": {"id": chat, "type": "private"}, "text": text}}


def sharded_world(cl, name, n, fake, router=None):
    """A cluster with shard k's slot on node k, and an Inboxd (not
    started) with redis.shards = n on it and a telegram connector."""
    cl.create()
    owners = cl.nodes[0].owners()
    for k in range(n):
        slot = keyslot("{inbox.%d}:in" % k)
        src = cl.node_at(owners[slot])
        if src is not cl.nodes[k]:
            owners = migrate_slot(cl, slot, src, cl.nodes[k])
    for k in range(n):
        check_eq(owners[keyslot("{inbox.%d}:in" % k)], cl.nodes[k].port,
                 "shard %d's master" % k)
    extra = {
        "redis": {"cluster": cl.seeds, "prefix": "{inbox}", "shards": n},
        "connector tg1": {"channel": "telegram", "secret": "tg-s",
                          "token": "1:T", "api_base": fake.base}}
    if router:
        extra["router"] = router
    return Inboxd(name, start=False, conf_extra=extra)


def test_sharded_gateway_on_cluster(cl):
    """One gateway in front of three shards: an agent logs in (agents are
    kept by every shard), the feed merges the shards' dialogs in one order
    across pages, live events come from every shard with a seq naming its
    shard, commands go to their dialog's shard, a template reaches every
    shard and is announced once, and a reconnecting socket's subscribe
    replays what it missed on each shard, once."""
    from fake_platform import FakePlatform
    N = 3
    fake = FakePlatform()
    w = sharded_world(cl, "sharded-gateway", N, fake, router={
        "auto_assign": 1, "presence_lease_ms": 60000})
    pw = "pw-alice-123"
    try:
        for k in range(N):
            w.start("router%d" % k, args=["-s", str(k)])
        w.start("webhooks")
        w.start("gateway")
        # agents are global: inboxctl without -s adds one to shard 0 and
        # copies it to the others, which do not announce it again
        w.inboxctl("agent", "add", "alice", "--name", "Alice", "--role",
                   "supervisor", "--password-stdin", input=pw + "\n")

        def everyone_knows():
            for k in range(N):
                cp = w.inboxctl("-s", str(k), "agent", "list", "--json")
                if "alice" not in cp.stdout.decode():
                    return None
            return True
        wait_for(everyone_knows, 20, "alice in every shard")
        for k in range(N):
            tail = w.inboxctl("-s", str(k), "events", "tail", "--from",
                              "0-0", "--timeout", "1").stdout.decode()
            check_eq(tail.count("agent.updated"), 1 if k == 0 else 0,
                     "agent.updated in shard %d's events" % k)
        w.inboxctl("agent", "set", "alice", "--capacity", "4")
        ws = w.ws_connect(w.token("alice", pw))

        def online_everywhere():
            for k in range(N):
                cp = w.inboxctl("-s", str(k), "agent", "list", "--json")
                a = json.loads(cp.stdout.decode())[0]
                if a["presence"] != "online" or a["capacity"] != 4:
                    return None
            return True
        wait_for(online_everywhere, 20, "alice online, capacity 4, in "
                 "every shard (presence and agent set copied)")
        pos = ws.call("subscribe", since={})
        check_eq(sorted(pos["last"]), ["0", "1", "2"], "positions of "
                 "every shard")
        check_eq(pos["replayed"], 0, "nothing replayed without since")
        threads = ["t-%d" % i for i in range(24)]
        for i, t in enumerate(threads):
            w.post_ok("api1", envelope("a-%d" % i, t, ts=1790000000000 + i))
            if i < 8:
                time.sleep(0.4)  # past the routers' load reading interval
        evs = {}
        for i in range(len(threads)):
            e = ws.wait_event("message.created", lambda e, i=i: e["data"][
                "message"]["external_id"] == "a-%d" % i, timeout=20)
            evs[threads[i]] = e
        for t, e in evs.items():
            k, _, sid = e["seq"].partition(":")
            check(sid and int(k) == shard_of("api1", t, N), "seq %s of "
                  "thread %s names its shard" % (e["seq"], t))
            cid = e["data"]["message"]["conversation_id"]
            check_eq((cid - 1) % N, int(k), "conversation %d's shard" % cid)
        check(len({e["seq"].split(":")[0] for e in evs.values()}) == N,
              "events from every shard")

        # alice's capacity counts every shard's dialogs: 4 in all, not 4
        # per shard
        mine = ws.call("feed", state="open", assignee="alice",
                       limit=100)["conversations"]
        log("alice's dialogs by shard: %s" % sorted(
            (c["id"] - 1) % N for c in mine))
        check_eq(len(mine), 4, "dialogs assigned to alice over all shards")
        check(len({(c["id"] - 1) % N for c in mine}) >= 2,
              "assigned by two shards at least", mine)
        check_eq([a["load"] for a in ws.call("agents")["agents"]], [4],
                 "alice's load over every shard")
        cp = w.inboxctl("agent", "list", "--json")
        check_eq(json.loads(cp.stdout.decode())[0]["load"], 4,
                 "inboxctl agent list: load over every shard")

        # the feed: every shard's dialogs, newest first, across pages
        got, before = [], None
        while True:
            args = {"state": "open", "limit": 5}
            if before:
                args["before"] = before
            page = ws.call("feed", **args)
            got += page["conversations"]
            before = page["next"]
            if not before:
                break
        ids = [c["id"] for c in got]
        check_eq(len(ids), len(threads), "dialogs in the merged feed")
        check_eq(len(set(ids)), len(ids), "each dialog once")
        keys = [(c["updated"], c["id"]) for c in got]
        check_eq(keys, sorted(keys, reverse=True), "newest first")
        check_eq({c["thread"] for c in got}, set(threads), "threads")

        # a dialog of each shard: read, noted (its shard's router)
        by_shard = {}
        for c in got:
            by_shard.setdefault((c["id"] - 1) % N, c)
        for k, c in sorted(by_shard.items()):
            d = ws.call("conversation.get", id=c["id"])
            check_eq(d["conversation"]["thread"], c["thread"], "get")
            n = ws.call("note.add", id=c["id"], text="note %d" % k)
            check_eq((n["message"]["id"] - 1) % N, k, "note id's shard")
            check_eq(n["message"]["conversation_id"], c["id"], "noted")

        # a template goes to every shard, announced once
        start = len(ws.events)
        ws.call("template.put", name="hello", text="Hello!")

        def everywhere():
            for k in range(N):
                cp = w.inboxctl("-s", str(k), "templates", "list",
                                "--json")
                if "hello" not in [t["name"] for t in
                                   json.loads(cp.stdout.decode())]:
                    return None
            return True
        wait_for(everywhere, 20, "the template in every shard")
        ws.drain(0.5)
        check_eq(len(ws.find_events("template.updated", start=start)), 1,
                 "template.updated announced once")
        check_eq([t["name"] for t in ws.call("templates")["templates"]],
                 ["hello"], "templates")
        sup = ws.call("stats")
        check_eq(sup["totals"]["created"], len(threads), "stats count "
                 "every shard's dialogs")
        cp = w.inboxctl("stats", "--json")
        check_eq(json.loads(cp.stdout.decode())["totals"]["created"],
                 len(threads), "inboxctl stats without -s: every shard")
        agents = ws.call("agents")["agents"]
        check_eq([a["login"] for a in agents], ["alice"], "agents")

        # a socket that was away: subscribe replays each shard's missed
        # events once, none it saw
        seen = {}
        for e in ws.events:
            k, _, sid = e["seq"].partition(":")
            seen[k] = sid
        ws2 = w.ws_connect(w.token("alice", pw))
        ws2.call("ping")
        ws.close()
        for i, t in enumerate(threads[:9]):
            w.post_ok("api1", envelope("b-%d" % i, t))
        for i in range(9):
            ws2.wait_event("message.created", lambda e, i=i: e["data"][
                "message"]["external_id"] == "b-%d" % i, timeout=20)
        ws3 = w.ws_connect(w.token("alice", pw))
        r = ws3.call("subscribe", since=seen, timeout=20)
        replay = ws3.find_events("message.created")
        exts = sorted(e["data"]["message"]["external_id"] for e in replay)
        check_eq(exts, sorted("b-%d" % i for i in range(9)),
                 "replayed: the missed messages, each once")
        check(r["replayed"] >= 9 and sorted(r["last"]) == ["0", "1", "2"],
              "subscribe answer", r)
        r2 = ws3.call("subscribe", since=r["last"])
        check_eq(r2["replayed"], 0, "nothing after the last positions")
        r = ws3.request("subscribe", since="0-0")
        check(r.get("ok") is False and "shard" in r["error"]["message"],
              "a single seq is refused with shards", r)
        for k in range(N):
            w.assert_running("router%d" % k)
        w.assert_running("gateway")
    except BaseException:
        w.failed = True
        raise
    finally:
        w.cleanup()
        fake.close()


def test_sharded_on_cluster(cl):
    """Three shards on three masters (redis.shards = 3): each shard's keys
    on its own master, one router per shard with its own store. Every
    message reaches the shard of its connector and thread and is stored
    there once, with ids of that shard; replies leave from each shard
    through the telegram connector and their status comes back to it; a
    shard's router killed with SIGKILL under traffic loses nothing and
    doubles nothing, and the other shards go on meanwhile."""
    import threading
    from fake_platform import FakePlatform
    N = 3
    fake = FakePlatform()
    w = sharded_world(cl, "sharded-on-cluster", N, fake)
    hdr = {"Content-Type": "application/json",
           "X-Telegram-Bot-Api-Secret-Token": "tg-s"}

    def ctl(k, *args, **kw):
        return w.inboxctl("-s", str(k), *args, **kw)

    def convs(k):
        cp = ctl(k, "conversations", "--state", "all", "--json")
        return json.loads(cp.stdout.decode())

    def post_tg(uid, chat, text):
        body = json.dumps(tg_update(uid, chat, text)).encode()
        st, _, data = w.http("POST", w.webhooks_port, "/hooks/tg1", body,
                             hdr)
        return st

    try:
        # the router refuses to start without its shard, and a shard out
        # of range
        cp = subprocess.run([w.exe["router"], "-c", w.conf_path],
                            capture_output=True, timeout=30)
        check(cp.returncode != 0 and b"-s SHARD (0 to 2)" in cp.stderr,
              "router without -s refused", cp.stderr)
        cp = subprocess.run([w.exe["router"], "-c", w.conf_path, "-s", "3"],
                            capture_output=True, timeout=30)
        check(cp.returncode != 0 and b"-s 3" in cp.stderr,
              "router -s 3 refused", cp.stderr)
        cp = w.inboxctl("conversations", check_rc=False)
        check(cp.returncode != 0 and b"say which shard" in cp.stderr,
              "inboxctl without -s refused", cp.stderr)
        for k in range(N):
            w.start("router%d" % k, args=["-s", str(k)])
        w.start("webhooks")
        for k in range(N):     # agents are kept by every shard
            ctl(k, "agent", "add", "alice", "--name", "Alice", "--role",
                "supervisor", "--password-stdin", input="pw-alice-123\n")

        want = {}             # thread -> external ids, per connector
        for i in range(30):
            w.post_ok("api1", envelope("a-%d" % i, "t-%d" % (i % 15)))
            want.setdefault(("api1", "t-%d" % (i % 15)), set()).add(
                "a-%d" % i)
        for i in range(12):
            chat = 7000 + i
            check_eq(post_tg(100 + i, chat, "hello %d" % i), 202,
                     "telegram update accepted")
            want.setdefault(("tg1", str(chat)), set()).add(
                "%d:%d" % (chat, 100 + i))
        per_shard = [0] * N
        for key in want:
            per_shard[shard_of(key[0], key[1], N)] += 1
        log("dialogs per shard, as hashed here: %s" % per_shard)
        check(all(per_shard), "every shard gets dialogs", per_shard)

        def stored():
            got = [convs(k) for k in range(N)]
            n = sum(c["message_count"] for g in got for c in g)
            return got if n >= 42 else None
        got = wait_for(stored, 60, "42 messages stored")
        seen = set()
        for k in range(N):
            for c in got[k]:
                key = (c["connector"], c["thread"])
                check(key not in seen, "a dialog in two shards", key)
                seen.add(key)
                check_eq(shard_of(key[0], key[1], N), k,
                         "the shard of dialog %s" % (key,))
                check_eq((c["id"] - 1) % N, k, "conversation id %d's "
                         "shard" % c["id"])
                check_eq(c["message_count"], len(want[key]),
                         "messages of %s" % (key,))
            check(cl.nodes[k].cmd("XLEN", "{inbox.%d}:in" % k) ==
                  sum(len(want[x]) for x in want
                      if shard_of(x[0], x[1], N) == k),
                  "shard %d's in stream on its own master" % k)
        check_eq(seen, set(want), "dialogs stored")

        # a reply from each shard leaves through tg1; its status comes
        # back to that shard
        sent = {}
        for k in range(N):
            c = next((c for c in got[k] if c["connector"] == "tg1"), None)
            if c is None:
                continue
            cp = ctl(k, "cmd", "--as", "alice", "message.send", json.dumps(
                {"id": c["id"], "text": "reply from shard %d" % k}))
            ans = json.loads(cp.stdout.decode())
            mid = ans["data"]["message"]["id"]
            sent[k] = (c, mid)
            check_eq((mid - 1) % N, k, "reply's id shard")
        check(len(sent) >= 2, "replies from two shards at least", sent)

        def delivered():
            calls = fake.calls_to("telegram")
            texts = {c.json().get("text"): c.json().get("chat_id")
                     for c in calls}
            return texts if len(texts) >= len(sent) else None
        texts = wait_for(delivered, 30, "replies delivered")
        for k, (c, mid) in sent.items():
            check_eq(texts.get("reply from shard %d" % k), c["thread"],
                     "shard %d's reply went to its chat" % k)

            def status_sent(k=k, mid=mid):
                evs = [e for e in w.inboxctl(
                    "-s", str(k), "events", "tail", "--from", "0-0",
                    "--timeout", "1", timeout=40).stdout.decode()
                    .splitlines() if '"message.status"' in e]
                return any('"sent"' in e and ('"message_id":%d' % mid) in
                           e.replace(" ", "") for e in evs) or None
            wait_for(status_sent, 30, "shard %d's reply reported sent" % k)

        # SIGKILL shard 1's router under traffic: the others go on, it
        # catches up after its restart, nothing lost or doubled
        acked, stop = [], threading.Event()

        def poster():
            i = 0
            while not stop.is_set():
                ext = "b-%d" % i
                st, _ = w.post("api1", envelope(ext, "u-%d" % (i % 30)),
                               timeout=10)
                if st == 202:
                    acked.append((ext, "u-%d" % (i % 30)))
                i += 1
                time.sleep(0.005)
        th = threading.Thread(target=poster)
        th.start()
        try:
            time.sleep(0.5)
            w.kill("router1")
            time.sleep(1.0)
            n0 = len(acked)
            time.sleep(1.0)
            check(len(acked) > n0, "posts acknowledged while shard 1's "
                  "router is down")
            w.start("router1", args=["-s", "1"])
            time.sleep(0.5)
        finally:
            stop.set()
            th.join()
        log("%d posts acknowledged around the kill" % len(acked))
        for ext, thread in acked:
            want.setdefault(("api1", thread), set()).add(ext)
        total = sum(len(v) for v in want.values()) + len(sent)

        def all_stored():
            got = [convs(k) for k in range(N)]
            n = sum(c["message_count"] for g in got for c in g)
            return got if n >= total else None
        got = wait_for(all_stored, 60, "every acknowledged post stored")
        for k in range(N):
            for c in got[k]:
                key = (c["connector"], c["thread"])
                extra = 1 if k in sent and sent[k][0]["id"] == c["id"] \
                    else 0
                check_eq(c["message_count"], len(want[key]) + extra,
                         "messages of %s in shard %d (each once)" % (key, k))
                check_eq(shard_of(key[0], key[1], N), k, "shard of %s"
                         % (key,))
        for k in range(N):
            w.assert_running("router%d" % k)
        w.assert_running("webhooks")
    except BaseException:
        w.failed = True
        raise
    finally:
        w.cleanup()
        fake.close()


TESTS = {
    "cluster_client": test_cluster_client,
    "inboxd_on_cluster": test_inboxd_on_cluster,
    "sharded_on_cluster": test_sharded_on_cluster,
    "sharded_gateway_on_cluster": test_sharded_gateway_on_cluster,
}


def _on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM: unwind so that finally kills servers.
    raise SystemExit(EXIT_FAIL)


def run(name):
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)
    cl = None
    code = EXIT_PASS
    t0 = time.monotonic()
    log("TEST:", name)
    try:
        cl = Cluster(name)
        TESTS[name](cl)
    except HarnessError as e:
        _say(traceback.format_exc())
        _say("HARNESS ERROR: %s" % e)
        code = EXIT_HARNESS
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else EXIT_FAIL
        _say("interrupted")
    except BaseException as e:  # noqa: BLE001 - everything else fails
        _say(traceback.format_exc())
        _say("FAIL: %s" % (e,))
        code = EXIT_FAIL
    finally:
        if cl is not None:
            cl.failed = code != EXIT_PASS
            try:
                cl.cleanup()
            except Exception:  # noqa: BLE001
                _say(traceback.format_exc())
                code = code or EXIT_HARNESS
    log("%s (%.1fs): %s" % ({0: "PASS", 1: "FAIL", 99: "HARNESS ERROR"}
                            .get(code, str(code)), time.monotonic() - t0,
                            name))
    os._exit(code)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        if len(sys.argv) == 2 and sys.argv[1] == "--list":
            print("\n".join(TESTS))
            sys.exit(0)
        print("usage: %s TEST_ID\n  %s" % (sys.argv[0], "\n  ".join(TESTS)))
        sys.exit(EXIT_HARNESS)
    run(sys.argv[1])


if __name__ == "__main__":
    main()
