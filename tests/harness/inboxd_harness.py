#!/usr/bin/env python3
"""Integration-test harness for inboxd (standard library only).

Each test builds one `Inboxd` instance. It owns a private tmpdir, picks free
loopback ports, starts a real `redis-server`, writes a config file, starts
`inbox-router`, `inbox-webhooks` and `inbox-gateway`, waits until each one is
ready (a log line or `GET /healthz`, never a fixed sleep), and kills
everything on exit, even when the test fails.  Process stderr goes to files in
the tmpdir; they are printed when a test fails.

Exit codes (see `run_test`): 0 pass, 1 fail, 99 harness error.  A test never
skips (77), because CI counts a skip as a failure.

Environment: INBOXD_BUILD (meson build dir) and INBOXD_SRC (source root).
"""

import atexit
import base64
import random
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_SKIP = 77
EXIT_HARNESS = 99

# Processes started by the harness; SIGTERM is sent in this order at cleanup.
DAEMONS = ("gateway", "webhooks", "router")


class TestFailure(AssertionError):
    """The software under test misbehaved (exit 1)."""


class HarnessError(Exception):
    """The harness itself could not do its job (exit 99)."""


class WsClosed(Exception):
    """The websocket was closed by the peer (or the connection dropped)."""

    def __init__(self, msg, code=None, reason=""):
        super().__init__(msg)
        self.code = code
        self.reason = reason


def _say(*args, **kw):
    """print() that never raises (a closed stdout must not stop cleanup)."""
    try:
        print(*args, **kw)
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def log(*args):
    """Progress line on stdout (meson keeps it in the test log)."""
    _say("[%s]" % time.strftime("%H:%M:%S"), *args)


def check(cond, msg, *detail):
    """Assert `cond`; on failure raise TestFailure with msg and JSON details."""
    if not cond:
        parts = [msg]
        for d in detail:
            if isinstance(d, (dict, list)):
                parts.append(json.dumps(d, indent=1, sort_keys=True)[:4000])
            else:
                parts.append(str(d)[:4000])
        raise TestFailure("\n".join(parts))


def check_eq(got, want, what):
    if got != want:
        raise TestFailure("%s: expected %s, got %s" % (
            what, json.dumps(want, sort_keys=True)[:2000],
            json.dumps(got, sort_keys=True)[:2000]))


def ws_closed(ws):
    """True once the peer closed the websocket (reads what is there)."""
    try:
        ws.pump(0.2)
    except Exception:  # noqa: BLE001 - closed is what we wait for
        return True
    return False


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until it returns a truthy value; return that value.

    Raises TestFailure naming `what` when the deadline passes.  The poll
    interval grows a little so slow (sanitized) builds are not hammered."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except (TestFailure, HarnessError):
            raise
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_exc = e
        if time.monotonic() >= deadline:
            extra = (" (last error: %r)" % last_exc) if last_exc else ""
            raise TestFailure("timed out after %.1fs waiting for %s%s"
                              % (timeout, what, extra))
        time.sleep(interval)
        interval = min(interval * 1.5, 0.25)


# --------------------------------------------------------------------------
# Free ports

_PORT_DIR = os.path.join(tempfile.gettempdir(), "inboxd-it-ports")


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _candidate_port(rng):
    """A port below the ephemeral range when there is room (so no outgoing
    connection can take it before the server binds), else one the kernel
    picks."""
    low = _ephemeral_low()
    if low > 12000:
        return rng.randrange(10000, low)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _reserve_port():
    """A free loopback port, reserved across parallel tests.

    A file created with O_EXCL in a shared directory keeps two parallel
    tests from taking the same port in the window between this call and
    the server's own bind."""
    rng = random.Random(os.urandom(8))
    os.makedirs(_PORT_DIR, exist_ok=True)
    for _ in range(500):
        port = _candidate_port(rng)
        if not _bindable(port):
            continue
        path = os.path.join(_PORT_DIR, str(port))
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            # Stale reservations (from a killed run) older than an hour go.
            try:
                if time.time() - os.stat(path).st_mtime > 3600:
                    os.unlink(path)
            except OSError:
                pass
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return port, path
    raise HarnessError("could not find a free loopback port")


# --------------------------------------------------------------------------
# Minimal Redis (RESP2) client

class RedisError(Exception):
    pass


class Redis:
    """A tiny synchronous RESP2 client: one connection, one command at a time."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RedisError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError("bad RESP reply: %r" % line)

    def command(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        r = self._reply()
        if isinstance(r, RedisError):
            raise r
        return r


def _s(v):
    """Decode bytes (recursively) for readable RESP replies."""
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, list):
        return [_s(x) for x in v]
    return v


def stream_entries(reply):
    """XRANGE reply -> [(id, {field: value})] with str keys and values."""
    out = []
    for eid, fields in reply or []:
        fields = _s(fields)
        out.append((_s(eid), dict(zip(fields[0::2], fields[1::2]))))
    return out


# --------------------------------------------------------------------------
# Minimal websocket client (RFC 6455)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class WsHandshakeRefused(Exception):
    def __init__(self, status, headers, body):
        super().__init__("websocket handshake refused: HTTP %s %r"
                         % (status, body[:200]))
        self.status = status
        self.headers = headers
        self.body = body


class WsClient:
    """A websocket client speaking the gateway's JSON protocol.

    Incoming frames are dispatched as they are read: pushes
    (`{"type":"event"}`) are appended to `self.events` (never removed, in
    arrival order), results are kept by `req` in `self.results`, results
    without a usable `req` go to `self.orphan_results`, anything else to
    `self.other`."""

    def __init__(self, host, port, path, timeout=10.0, origin=None):
        self.host, self.port, self.path = host, port, path
        self.origin = origin or "http://%s:%d" % (host, port)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.rbuf = b""
        self.closed = False
        self.close_code = None
        self.close_reason = ""
        self.close_sent = False
        self.next_req = 1
        self.events = []
        self.results = {}
        self.orphan_results = []
        self.other = []
        self.frames_in = 0
        self._frag_op = None
        self._frag = []
        self._handshake(timeout)

    # -- handshake --------------------------------------------------------
    def _handshake(self, timeout):
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\n"
               "Host: %s:%d\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "Origin: %s\r\n"
               "\r\n") % (self.path, self.host, self.port, key,
                          self.origin)
        self.sock.sendall(req.encode())
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.rbuf:
            self._recv_some(deadline, "handshake answer")
        head, self.rbuf = self.rbuf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise TestFailure("bad handshake status line: %r" % lines[0])
        status = int(parts[1])
        headers = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if status != 101:
            body = self.rbuf
            n = int(headers.get("content-length", "0") or 0)
            try:
                while len(body) < n:
                    self._recv_some(deadline, "refusal body")
                    body = self.rbuf
            except (WsClosed, TestFailure):
                pass
            self.sock.close()
            self.closed = True
            raise WsHandshakeRefused(status, headers, body)
        want = base64.b64encode(hashlib.sha1(
            (key + WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            raise TestFailure("bad Sec-WebSocket-Accept %r (want %r)"
                              % (headers.get("sec-websocket-accept"), want))
        if "websocket" not in headers.get("upgrade", "").lower():
            raise TestFailure("101 without Upgrade: websocket: %r" % headers)

    # -- raw I/O ----------------------------------------------------------
    def _recv_some(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out reading %s" % what)
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as e:
            self.closed = True
            raise WsClosed("connection dropped: %r" % e)
        if not data:
            self.closed = True
            raise WsClosed("connection closed by peer (EOF)")
        self.rbuf += data

    def _need(self, n, deadline):
        while len(self.rbuf) < n:
            self._recv_some(deadline, "frame")

    def send_frame(self, opcode, payload, fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.settimeout(10)
        self.sock.sendall(hdr + mask + masked)

    def send_text(self, text):
        if self.closed:
            raise WsClosed("send on a closed websocket")
        self.send_frame(OP_TEXT, text)

    def _read_frame(self, deadline):
        self._need(2, deadline)
        b0, b1 = self.rbuf[0], self.rbuf[1]
        fin, opcode = bool(b0 & 0x80), b0 & 0x0F
        masked, n = bool(b1 & 0x80), b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack("!H", self.rbuf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack("!Q", self.rbuf[2:10])[0]
            off = 10
        if masked:
            raise TestFailure("server sent a masked frame (RFC 6455 5.1)")
        self._need(off + n, deadline)
        payload = self.rbuf[off:off + n]
        self.rbuf = self.rbuf[off + n:]
        return fin, opcode, payload

    def recv_text(self, timeout):
        """Next complete text message (str).  Answers pings, handles
        fragmentation, raises WsClosed on close and socket.timeout when
        nothing arrives in time."""
        if self.closed and not self.rbuf:
            raise WsClosed("websocket closed", self.close_code,
                           self.close_reason)
        deadline = time.monotonic() + timeout
        while True:
            fin, op, payload = self._read_frame(deadline)
            self.frames_in += 1
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] \
                    if len(payload) >= 2 else None
                self.close_code = code
                self.close_reason = payload[2:].decode("utf-8", "replace")
                if not self.close_sent:
                    try:
                        self.send_frame(OP_CLOSE, payload[:2])
                        self.close_sent = True
                    except OSError:
                        pass
                self.closed = True
                try:
                    self.sock.close()
                except OSError:
                    pass
                raise WsClosed("websocket closed by server (code %s %r)"
                               % (code, self.close_reason), code,
                               self.close_reason)
            if op in (OP_TEXT, OP_BINARY):
                if self._frag_op is not None:
                    raise TestFailure("new data frame inside a fragmented "
                                      "message")
                if fin:
                    return self._decode(op, payload)
                self._frag_op, self._frag = op, [payload]
                continue
            if op == OP_CONT:
                if self._frag_op is None:
                    raise TestFailure("continuation frame without a start")
                self._frag.append(payload)
                if fin:
                    op, data = self._frag_op, b"".join(self._frag)
                    self._frag_op, self._frag = None, []
                    return self._decode(op, data)
                continue
            raise TestFailure("unknown websocket opcode %d" % op)

    @staticmethod
    def _decode(op, payload):
        if op != OP_TEXT:
            raise TestFailure("gateway sent a binary frame: %r"
                              % payload[:100])
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError as e:
            raise TestFailure("text frame is not UTF-8: %s" % e)

    # -- JSON protocol ----------------------------------------------------
    def pump(self, timeout):
        """Read and dispatch one message; False when none came in time."""
        try:
            text = self.recv_text(timeout)
        except socket.timeout:
            return False
        try:
            obj = json.loads(text)
        except ValueError:
            raise TestFailure("gateway sent a frame that is not JSON: %r"
                              % text[:300])
        self.dispatch(obj)
        return True

    def dispatch(self, obj):
        t = obj.get("type") if isinstance(obj, dict) else None
        if t == "event":
            self.events.append(obj)
        elif t == "result":
            req = obj.get("req")
            if isinstance(req, int) and req > 0 and req not in self.results:
                self.results[req] = obj
            else:
                self.orphan_results.append(obj)
        else:
            self.other.append(obj)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def request(self, type_, timeout=10.0, **fields):
        """Send {"type":type_, "req":N, **fields}; return the result frame,
        collecting pushed events meanwhile."""
        req = self.next_req
        self.next_req += 1
        msg = {"type": type_, "req": req}
        msg.update(fields)
        self.send_json(msg)
        return self.wait_result(req, timeout, type_)

    def wait_result(self, req, timeout=10.0, what="request"):
        deadline = time.monotonic() + timeout
        while req not in self.results:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("no result for %s req %d within %.1fs"
                                  % (what, req, timeout))
            self.pump(left)
        return self.results[req]

    def call(self, type_, timeout=10.0, **fields):
        """request() that must succeed; returns its `data`."""
        r = self.request(type_, timeout, **fields)
        check(r.get("ok") is True, "%s %s failed" % (type_, fields), r)
        check("data" in r, "%s result has no data" % type_, r)
        return r["data"]

    def find_events(self, name=None, pred=None, start=0):
        def ok(e):
            if pred is None:
                return True
            try:
                return pred(e)
            except (KeyError, TypeError, IndexError, AttributeError):
                return False  # a malformed event does not match
        return [e for e in self.events[start:]
                if (name is None or e.get("event") == name) and ok(e)]

    def wait_event(self, name, pred=None, timeout=5.0, start=0):
        """First pushed event called `name` (index >= start) for which
        pred(event) holds; reads the socket until it arrives."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find_events(name, pred, start)
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                seen = ["%s %s" % (e.get("seq"), e.get("event"))
                        for e in self.events[-30:]]
                raise TestFailure(
                    "event %s not received within %.1fs; last events seen:\n"
                    "  %s" % (name, timeout, "\n  ".join(seen) or "(none)"))
            self.pump(left)

    def wait_until(self, cond, timeout, what, step=0.05):
        """Read and dispatch frames until cond() holds; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                return v
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("timed out after %.1fs waiting for %s"
                                  % (timeout, what))
            self.pump(min(step, left))

    def drain(self, quiet=0.3, limit=10.0):
        """Read until nothing arrives for `quiet` seconds (at most `limit`).
        Used only to collect stragglers after a positive condition held."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if not self.pump(quiet):
                return

    def close(self):
        if self.closed:
            return
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
            self.close_sent = True
            deadline = time.monotonic() + 2
            while True:
                self._read_frame(deadline)
        except Exception:  # noqa: BLE001 - peer closes however it likes
            pass
        finally:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


def wait_event(client, name, pred=None, timeout=5.0):
    """The first event `name` pushed to client for which pred holds."""
    return client.wait_event(name, pred, timeout)


# --------------------------------------------------------------------------
# Processes

class Proc:
    def __init__(self, name, argv, logpath, popen):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.popen = popen
        self.expect_exit = False   # set when the harness signals it

    @property
    def pid(self):
        return self.popen.pid

    def running(self):
        return self.popen.poll() is None


def envelope(external_id, thread, text=None, contact=None, ts=None, **extra):
    """A webhook body for POST /hooks/<connector> (connector/channel/v/kind
    left to the connector)."""
    body = {
        "external_id": external_id,
        "thread": thread,
        "contact": contact or {"external_id": "c-" + thread,
                               "name": "Customer " + thread},
        "text": text if text is not None else "text of " + external_id,
    }
    if ts is not None:
        body["ts"] = ts
    body.update(extra)
    return body


class Inboxd:
    """One test's world: tmpdir, Redis, config and the three daemons."""

    def __init__(self, test_name, conf_extra=None, start=True):
        self.test_name = test_name
        self.build = os.environ.get("INBOXD_BUILD")
        self.src = os.environ.get("INBOXD_SRC")
        if not self.build or not self.src:
            here = os.path.dirname(os.path.abspath(__file__))
            self.src = self.src or os.path.dirname(os.path.dirname(here))
            if not self.build:
                raise HarnessError("INBOXD_BUILD is not set")
        self.exe = {
            "router": os.path.join(self.build, "router", "inbox-router"),
            "inboxctl": os.path.join(self.build, "router", "inboxctl"),
            "webhooks": os.path.join(self.build, "connectors", "webhooks",
                                     "inbox-webhooks"),
            "gateway": os.path.join(self.build, "ws_gateway",
                                    "inbox-gateway"),
            "imap": os.path.join(self.build, "connectors", "imap",
                                 "inbox-imap"),
        }
        self.extra_cleanup = []  # stop functions of other servers
        for name, path in self.exe.items():
            if name == "imap":
                continue         # only the mail tests need it
            if not os.access(path, os.X_OK):
                raise HarnessError("%s not built: %s" % (name, path))
        for tool in ("redis-server", "redis-cli"):
            if not shutil.which(tool):
                raise HarnessError("%s not in PATH" % tool)
        safe = "".join(c if c.isalnum() else "-" for c in test_name)[:40]
        self.tmp = tempfile.mkdtemp(prefix="inboxd-it-%s-" % safe)
        self.failed = False
        self.procs = {}          # name -> Proc (current incarnation)
        self.old_procs = []      # earlier incarnations
        self.logs = []           # every log file, in start order
        self.starts = {}         # name -> number of starts
        self.cleanup_errors = []
        self._port_files = []
        self.redis_port = self._port()
        self.webhooks_port = self._port()
        self.gateway_port = self._port()
        self.redis_proc = None
        self.conf_path = os.path.join(self.tmp, "inboxd.conf")
        self.conf_extra = conf_extra or {}
        self.write_config()
        self._cleaned = False
        atexit.register(self.cleanup)
        _set_sanitizer_defaults()
        log("tmpdir", self.tmp, "redis", self.redis_port, "webhooks",
            self.webhooks_port, "gateway", self.gateway_port)
        if start:
            self.start_all()

    def _port(self):
        port, path = _reserve_port()
        self._port_files.append(path)
        return port

    # -- config -----------------------------------------------------------
    def write_config(self):
        sections = [
            ("log", {"level": "info"}),
            ("redis", {"host": "127.0.0.1", "port": self.redis_port,
                       "prefix": "inbox", "timeout_ms": 2000}),
            ("store", {"path": os.path.join(self.tmp, "db"),
                       "map_size_mb": 256}),
            # routing is on in production; the tests of other features
            # assign by hand (route_tests.py turns it on)
            ("router", {"consumer": "router-1", "auto_assign": 0}),
            ("webhooks", {"listen": "127.0.0.1",
                          "port": self.webhooks_port}),
            ("gateway", {"listen": "127.0.0.1", "port": self.gateway_port,
                         "web_root": os.path.join(self.src, "ws_gateway",
                                                  "web"),
                         "secret_file": os.path.join(self.tmp,
                                                     "gateway.secret")}),
            ("connector api1", {"channel": "api"}),
            ("connector sec1", {"channel": "api", "secret": "s3cret"}),
        ]
        out = ["# written by tests/harness/inboxd_harness.py for %s"
               % self.test_name]
        for sect, keys in sections:
            keys = dict(keys)
            keys.update(self.conf_extra.get(sect, {}))
            out.append("")
            out.append("[%s]" % sect)
            for k, v in keys.items():
                out.append("%s = %s" % (k, v))
        for sect, keys in self.conf_extra.items():
            if sect not in dict(sections):
                out.append("")
                out.append("[%s]" % sect)
                for k, v in keys.items():
                    out.append("%s = %s" % (k, v))
        with open(self.conf_path, "w") as f:
            f.write("\n".join(out) + "\n")

    # -- redis --------------------------------------------------------------
    def start_redis(self, timeout=20):
        n = self.starts.get("redis", 0) + 1
        self.starts["redis"] = n
        logpath = os.path.join(self.tmp, "redis-%d.log" % n)
        argv = ["redis-server", "--port", str(self.redis_port),
                "--bind", "127.0.0.1", "--dir", self.tmp, "--save", "",
                "--appendonly", "yes", "--appendfsync", "always",
                "--daemonize", "no", "--logfile", logpath,
                "--protected-mode", "no"]
        with open(os.path.join(self.tmp, "redis-%d.out" % n), "wb") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     cwd=self.tmp)
        self.redis_proc = Proc("redis", argv, logpath, popen)
        self.logs.append(logpath)
        self.logs.append(os.path.join(self.tmp, "redis-%d.out" % n))
        self._wait_ping(self.redis_port, popen, "redis-server", timeout)

    @staticmethod
    def _wait_ping(port, popen, what, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if popen.poll() is not None:
                raise HarnessError("%s exited with %s at start"
                                   % (what, popen.returncode))
            try:
                r = Redis(port, timeout=1)
                try:
                    if r.command("PING") == "PONG":
                        # Still loading the AOF answers -LOADING; PING is
                        # only PONG once it accepts commands.
                        return
                finally:
                    r.close()
            except (OSError, RedisError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise HarnessError("%s not answering PING on %d"
                                   % (what, port))
            time.sleep(0.05)

    # -- one master, one replica, redis-sentinel ------------------------------
    def start_sentinels(self, n=3, master_name="inbox", down_after_ms=1000,
                        failover_timeout_ms=3000, min_replicas=0):
        """Replicates the master (start_redis, already running) to one
        replica and starts n redis-sentinel processes monitoring it (quorum
        n//2+1), each on a free loopback port, and waits until every
        sentinel knows the replica and the other sentinels (so a failover
        can start at once). Sets [redis] sentinels, master_name and
        min_replicas in the config (write_config is called). The replica
        and the sentinels are stopped at cleanup."""
        for tool in ("redis-sentinel",):
            if not shutil.which(tool):
                raise HarnessError("%s not in PATH (Debian package "
                                   "redis-sentinel)" % tool)
        self.master_name = master_name
        self.extra_procs = []    # the replica and the sentinels

        def stop():
            for p in self.extra_procs:
                if p.running():
                    p.expect_exit = True
                    p.popen.terminate()
                    try:
                        p.popen.wait(20)
                    except subprocess.TimeoutExpired:
                        p.popen.kill()
                        p.popen.wait()
        self.extra_cleanup.append(stop)
        self.replica_port = self._port()
        rdir = os.path.join(self.tmp, "replica")
        os.makedirs(rdir)
        self.replica_proc = self._spawn_redis(
            "replica", self.replica_port, rdir,
            ["--replicaof", "127.0.0.1", str(self.redis_port)])
        wait_for(lambda: "master_link_status:up" in self.redis_at(
            self.replica_port, "INFO", "replication"), 20,
            "the replica to sync with the master")
        self.sentinel_ports = []
        for i in range(n):
            port = self._port()
            sdir = os.path.join(self.tmp, "sentinel-%d" % (i + 1))
            os.makedirs(sdir)
            conf = os.path.join(sdir, "sentinel.conf")
            logpath = os.path.join(sdir, "sentinel.log")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndaemonize no\n"
                        "protected-mode no\ndir %s\nlogfile %s\n"
                        "sentinel monitor %s 127.0.0.1 %d %d\n"
                        "sentinel down-after-milliseconds %s %d\n"
                        "sentinel failover-timeout %s %d\n"
                        "sentinel parallel-syncs %s 1\n" % (
                            port, sdir, logpath, master_name,
                            self.redis_port, n // 2 + 1, master_name,
                            down_after_ms, master_name, failover_timeout_ms,
                            master_name))
            with open(os.path.join(sdir, "sentinel.out"), "wb") as out:
                popen = subprocess.Popen(
                    ["redis-sentinel", conf], stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, cwd=sdir)
            proc = Proc("sentinel-%d" % (i + 1), ["redis-sentinel", conf],
                        logpath, popen)
            self.extra_procs.append(proc)
            self.logs.append(logpath)
            self.sentinel_ports.append(port)
            self._wait_ping(port, popen, "redis-sentinel", 20)

        def ready():
            for port in self.sentinel_ports:
                if len(self.redis_at(port, "SENTINEL", "replicas",
                                     master_name)) != 1 or \
                        len(self.redis_at(port, "SENTINEL", "sentinels",
                                          master_name)) != n - 1:
                    return False
            return True
        wait_for(ready, 30, "every sentinel to know the replica and the "
                 "other sentinels")
        self.conf_extra.setdefault("redis", {}).update({
            "sentinels": ", ".join("127.0.0.1:%d" % p
                                   for p in self.sentinel_ports),
            "master_name": master_name, "min_replicas": min_replicas})
        self.write_config()
        log("sentinels", self.sentinel_ports, "master", self.redis_port,
            "replica", self.replica_port)

    def _spawn_redis(self, name, port, dirpath, extra):
        logpath = os.path.join(dirpath, "%s.log" % name)
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--dir", dirpath, "--save", "", "--appendonly", "yes",
                "--appendfsync", "always", "--daemonize", "no",
                "--logfile", logpath, "--protected-mode", "no"] + extra
        with open(os.path.join(dirpath, "%s.out" % name), "wb") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     cwd=dirpath)
        proc = Proc(name, argv, logpath, popen)
        self.extra_procs.append(proc)
        self.logs.append(logpath)
        self._wait_ping(port, popen, name, 20)
        return proc

    def sentinel_master(self):
        """(host, port) of the master as the first sentinel that answers
        sees it, or None."""
        for port in self.sentinel_ports:
            try:
                a = self.redis_at(port, "SENTINEL", "get-master-addr-by-name",
                                  self.master_name)
            except (OSError, RedisError):
                continue
            if a:
                return a[0], int(a[1])
        return None

    def wait_failover(self, old_port, timeout=30):
        """Waits until every sentinel names a master other than old_port and
        that one says ROLE master; returns its port."""
        def done():
            ports = set()
            for port in self.sentinel_ports:
                a = self.redis_at(port, "SENTINEL",
                                  "get-master-addr-by-name",
                                  self.master_name)
                ports.add(int(a[1]))
            if len(ports) != 1 or old_port in ports:
                return None
            new = ports.pop()
            try:
                return new if self.redis_at(new, "ROLE")[0] == "master" \
                    else None
            except (OSError, RedisError):
                return None
        return wait_for(done, timeout, "the sentinels to fail over from %d"
                        % old_port)

    def redis_at(self, port, *args):
        """One command to the Redis (or sentinel) on port; decoded."""
        r = Redis(port, timeout=5)
        try:
            return _s(r.command(*args))
        finally:
            r.close()

    def stop_redis(self, sig=signal.SIGTERM, timeout=20):
        p = self.redis_proc
        if p is None or not p.running():
            return None
        p.expect_exit = True
        p.popen.send_signal(sig)
        try:
            return p.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait()
            raise HarnessError("redis-server ignored signal %d" % sig)

    def redis(self, *args):
        """Run one Redis command over a fresh connection; bytes decoded."""
        r = Redis(self.redis_port)
        try:
            return _s(r.command(*args))
        finally:
            r.close()

    def redis_raw(self, *args):
        r = Redis(self.redis_port)
        try:
            return r.command(*args)
        finally:
            r.close()

    def redis_cli(self, *args, check_rc=True):
        """redis-cli -p PORT ARGS...; returns stdout (str, stripped)."""
        cp = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p",
                             str(self.redis_port)] + [str(a) for a in args],
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=20)
        out = cp.stdout.decode("utf-8", "replace").strip()
        if check_rc and cp.returncode != 0:
            raise HarnessError("redis-cli %s: rc %d: %s %s" % (
                args, cp.returncode, out, cp.stderr.decode(errors="replace")))
        return out

    # -- daemons ------------------------------------------------------------
    def start_nowait(self, name, conf=None):
        """Start a daemon without waiting for it to be ready (it is
        expected not to be)."""
        return self.start(name, conf=conf, wait=False)

    def start(self, name, timeout=30, conf=None, wait=True, args=()):
        """Start one daemon and wait until it is ready. A name with a digit
        suffix ("router2") is another instance of that program, usually
        with its own `conf` file; `args` go after -c FILE (e.g. a router's
        -s SHARD)."""
        if name in self.procs and self.procs[name].running():
            raise HarnessError("%s already running" % name)
        n = self.starts.get(name, 0) + 1
        self.starts[name] = n
        logpath = os.path.join(self.tmp, "%s-%d.log" % (name, n))
        exe = self.exe.get(name) or self.exe[name.rstrip("0123456789")]
        argv = [exe, "-c", conf or self.conf_path] + list(args)
        f = open(logpath, "wb")
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=f, stderr=subprocess.STDOUT,
                                     cwd=self.tmp)
        finally:
            f.close()
        if name in self.procs:
            self.old_procs.append(self.procs[name])
        proc = Proc(name, argv, logpath, popen)
        self.procs[name] = proc
        self.logs.append(logpath)
        t0 = time.monotonic()
        if not wait:
            return proc
        if name.startswith("router") or name.startswith("imap"):
            self._wait_log(proc, "ready", timeout)
        elif name == "webhooks":
            self._wait_healthz(proc, self.webhooks_port, timeout)
        elif name == "gateway":
            self._wait_healthz(proc, self.gateway_port, timeout)
        log("%s started (pid %d, ready in %.2fs)"
            % (name, proc.pid, time.monotonic() - t0))
        return proc

    def _died(self, proc, what):
        self.failed = True
        raise TestFailure("%s exited with %s while %s; its log:\n%s" % (
            proc.name, proc.popen.returncode, what, _tail(proc.logpath)))

    def _wait_log(self, proc, needle, timeout):
        deadline = time.monotonic() + timeout
        while True:
            with open(proc.logpath, "rb") as f:
                if needle.encode() in f.read():
                    return
            if not proc.running():
                self._died(proc, "starting (waiting for %r)" % needle)
            if time.monotonic() > deadline:
                raise TestFailure("%s printed no %r within %ds; log:\n%s" % (
                    proc.name, needle, timeout, _tail(proc.logpath)))
            time.sleep(0.02)

    def _wait_healthz(self, proc, port, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if not proc.running():
                self._died(proc, "starting (waiting for /healthz)")
            try:
                st, _, body = self.http("GET", port, "/healthz", timeout=2)
                if st == 200:
                    return
                last = "HTTP %d %r" % (st, body[:100])
            except OSError as e:
                last = repr(e)
            if time.monotonic() > deadline:
                raise TestFailure("%s /healthz not 200 within %ds (last: %s)"
                                  "; log:\n%s" % (proc.name, timeout, last,
                                                  _tail(proc.logpath)))
            time.sleep(0.03)

    def stop(self, name, sig=signal.SIGTERM, timeout=30):
        """Signal a daemon and wait for it; returns its exit status
        (negative = killed by that signal)."""
        p = self.procs.get(name)
        if p is None or not p.running():
            if p is not None and not p.expect_exit:
                self._died(p, "running (it exited on its own)")
            return p.popen.returncode if p else None
        p.expect_exit = True
        p.popen.send_signal(sig)
        try:
            rc = p.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait()
            raise TestFailure("%s did not exit within %ds of signal %d"
                              % (name, timeout, sig))
        if sig == signal.SIGTERM and rc != 0:
            self.failed = True
            raise TestFailure("%s exited with %s on SIGTERM; log:\n%s"
                              % (name, rc, _tail(p.logpath, 200)))
        return rc

    def kill(self, name):
        return self.stop(name, signal.SIGKILL)

    def restart(self, name, sig=signal.SIGTERM):
        """Stop a daemon and start it again with the same config file
        and arguments."""
        argv = self.procs[name].argv
        self.stop(name, sig)
        return self.start(name, conf=argv[2], args=argv[3:])

    def start_all(self):
        self.start_redis()
        self.start("router")
        self.start("webhooks")
        self.start("gateway")

    def kill_all(self, sig=signal.SIGKILL, redis=True):
        """Signal every daemon (and Redis) at once, then reap them."""
        targets = [self.procs[n] for n in DAEMONS
                   if n in self.procs and self.procs[n].running()]
        if redis and self.redis_proc and self.redis_proc.running():
            targets.append(self.redis_proc)
        for p in targets:
            p.expect_exit = True
            p.popen.send_signal(sig)
        for p in targets:
            try:
                p.popen.wait(30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
                raise TestFailure("%s survived signal %d" % (p.name, sig))

    def assert_running(self, *names):
        for n in names or DAEMONS:
            p = self.procs.get(n)
            if p is None or not p.running():
                self._died(p, "the test ran")

    # -- HTTP ---------------------------------------------------------------
    def http(self, method, port, path, body=None, headers=None, timeout=15):
        """One HTTP/1.1 request on a new connection: (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            h = {"Connection": "close"}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), data
        finally:
            conn.close()

    @staticmethod
    def _json_or_none(data):
        try:
            return json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def post(self, connector, obj, headers=None, method="POST",
             timeout=15):
        """POST /hooks/<connector>.  obj is a dict (sent as JSON) or bytes.
        Returns (status, parsed JSON or None)."""
        if isinstance(obj, (dict, list)):
            body = json.dumps(obj).encode()
        else:
            body = obj
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        st, _, data = self.http(method, self.webhooks_port,
                                "/hooks/" + connector,
                                body if method != "GET" else None, h,
                                timeout=timeout)
        return st, self._json_or_none(data)

    def post_ok(self, connector, obj, headers=None):
        st, js = self.post(connector, obj, headers)
        check(st == 202, "POST /hooks/%s answered %s, expected 202"
              % (connector, st), js if js is not None else "(no JSON)")
        check(isinstance(js, dict) and js.get("ok") is True
              and isinstance(js.get("id"), str),
              "202 body is not {ok:true,id:<stream id>}", js)
        return js

    def login(self, login, password, raw=None):
        body = raw if raw is not None else json.dumps(
            {"login": login, "password": password}).encode()
        st, _, data = self.http("POST", self.gateway_port, "/api/login",
                                body, {"Content-Type": "application/json"})
        return st, self._json_or_none(data)

    def token(self, login, password):
        st, js = self.login(login, password)
        check(st == 200, "login %s answered %s" % (login, st), js)
        check(isinstance(js, dict) and isinstance(js.get("token"), str)
              and js["token"], "login answer has no token", js)
        return js["token"]

    # -- websocket ------------------------------------------------------------
    def ws_open(self, path, timeout=10, origin=None):
        """Websocket handshake on the gateway; raises WsHandshakeRefused."""
        return WsClient("127.0.0.1", self.gateway_port, path, timeout,
                        origin)

    def ws_handshake_status(self, path, origin=None):
        """HTTP status of the handshake: 101 (then closes) or the refusal."""
        try:
            c = self.ws_open(path, origin=origin)
        except WsHandshakeRefused as e:
            return e.status
        c.close()
        return 101

    def ws_connect(self, token):
        path = "/ws?token=" + urllib.parse.quote(token, safe="")
        try:
            return self.ws_open(path)
        except WsHandshakeRefused as e:
            raise TestFailure("websocket with a valid token refused: HTTP %d"
                              " %r" % (e.status, e.body[:300]))

    # -- inboxctl -------------------------------------------------------------
    def inboxctl(self, *args, input=None, timeout=60, check_rc=True):
        argv = [self.exe["inboxctl"], "-c", self.conf_path] + list(args)
        try:
            cp = subprocess.run(argv, input=input.encode() if isinstance(
                input, str) else input, capture_output=True, timeout=timeout,
                cwd=self.tmp)
        except subprocess.TimeoutExpired:
            raise TestFailure("inboxctl %s did not finish within %ds"
                              % (" ".join(args), timeout))
        path = os.path.join(self.tmp, "inboxctl.log")
        with open(path, "ab") as f:
            f.write(b"$ inboxctl %s -> rc %d\n--- stdout\n%s\n--- stderr\n"
                    b"%s\n" % (" ".join(args).encode(), cp.returncode,
                               cp.stdout[-20000:], cp.stderr[-20000:]))
        if path not in self.logs:
            self.logs.append(path)
        if check_rc and cp.returncode != 0:
            raise TestFailure("inboxctl %s exited %d:\n%s\n%s" % (
                " ".join(args), cp.returncode,
                cp.stdout.decode(errors="replace")[-3000:],
                cp.stderr.decode(errors="replace")[-5000:]))
        return cp

    def add_agent(self, login, password, name=None, role="agent"):
        self.inboxctl("agent", "add", login, "--name", name or login.title(),
                      "--role", role, "--password-stdin",
                      input=password + "\n")

    def conversations(self, state="all"):
        cp = self.inboxctl("conversations", "--state", state, "--json")
        try:
            v = json.loads(cp.stdout.decode())
        except ValueError:
            raise TestFailure("inboxctl conversations --json printed no JSON:"
                              " %r" % cp.stdout[:500])
        check(isinstance(v, list), "conversations --json is not an array", v)
        return v

    def events_tail(self, from_id="0-0", count=None, timeout=10):
        args = ["events", "tail", "--from", from_id, "--timeout",
                str(timeout)]
        if count is not None:
            args += ["--count", str(count)]
        cp = self.inboxctl(*args, timeout=timeout + 30)
        out = []
        for ln in cp.stdout.decode().splitlines():
            if not ln.strip():
                continue
            try:
                out.append(json.loads(ln))
            except ValueError:
                raise TestFailure("events tail printed a non-JSON line: %r"
                                  % ln)
        return out

    # -- cleanup --------------------------------------------------------------
    def cleanup(self):
        """Stop everything (SIGTERM, checking exit codes), then dump logs if
        the test failed.  Safe to call twice."""
        if self._cleaned:
            return
        self._cleaned = True
        bad = []
        for p in self.old_procs:
            if p.running():
                p.popen.kill()
                p.popen.wait()
            elif not p.expect_exit:
                bad.append("%s (earlier run, pid %d) exited on its own "
                           "with %s" % (p.name, p.pid, p.popen.returncode))
        names = [n for n in DAEMONS if n in self.procs] + \
            [n for n in self.procs if n not in DAEMONS]
        for name in names:
            p = self.procs.get(name)
            if p is None:
                continue
            if not p.running():
                if not p.expect_exit:
                    bad.append("%s (pid %d) exited on its own with %s"
                               % (name, p.pid, p.popen.returncode))
                continue
            p.expect_exit = True
            p.popen.send_signal(signal.SIGTERM)
            try:
                rc = p.popen.wait(30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
                bad.append("%s (pid %d) did not exit within 30s of SIGTERM"
                           % (name, p.pid))
                continue
            if rc != 0:
                bad.append("%s (pid %d) exited with %s on SIGTERM (see its "
                           "log: sanitizer report?)" % (name, p.pid, rc))
        for stop in self.extra_cleanup:
            try:
                stop()
            except Exception as e:  # noqa: BLE001 - report, go on
                bad.append("cleanup: %s" % e)
        if self.redis_proc and self.redis_proc.running():
            self.redis_proc.expect_exit = True
            self.redis_proc.popen.terminate()
            try:
                self.redis_proc.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.redis_proc.popen.kill()
                self.redis_proc.popen.wait()
        for path in self._port_files:
            try:
                os.unlink(path)
            except OSError:
                pass
        if bad:
            self.cleanup_errors = bad
            self.failed = True
            _say("\nFAIL at shutdown:\n  " + "\n  ".join(bad), flush=True)
        if self.failed:
            self.dump_logs()
            _say("tmpdir kept: %s" % self.tmp, flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def dump_logs(self):
        for path in self.logs:
            _say("\n===== %s =====" % os.path.basename(path))
            _say(_tail(path, 40 if os.path.basename(path).startswith(
                "redis") else 300))


def _tail(path, lines=80):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    text = data.decode("utf-8", "replace").splitlines()
    if len(text) > lines:
        text = ["... (%d lines skipped)" % (len(text) - lines)] + \
            text[-lines:]
    return "\n".join(text) if text else "(empty)"


def _set_sanitizer_defaults():
    """Same defaults as `meson test` when the test runs by hand: stop at the
    first report and exit nonzero, so a report can never pass silently."""
    os.environ.setdefault("ASAN_OPTIONS",
                          "halt_on_error=1:abort_on_error=1:print_summary=1")
    os.environ.setdefault("UBSAN_OPTIONS",
                          "halt_on_error=1:abort_on_error=1:print_summary=1:"
                          "print_stacktrace=1")


def _on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM: unwind so finally/atexit kill children.
    raise SystemExit(EXIT_FAIL)


def run_test(name, func, conf_extra=None, start=True):
    """Run func(inboxd) in a fresh world and exit with the right code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)
    world = None
    code = EXIT_PASS
    t0 = time.monotonic()
    log("TEST:", name)
    try:
        world = Inboxd(name, conf_extra=conf_extra, start=False)
        if start:
            world.start_all()
        func(world)
    except HarnessError as e:
        _say(traceback.format_exc())
        _say("HARNESS ERROR: %s" % e, flush=True)
        code = EXIT_HARNESS
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else EXIT_FAIL
        _say("interrupted", flush=True)
    except BaseException as e:  # noqa: BLE001 - everything else is a failure
        _say(traceback.format_exc())
        _say("FAIL: %s" % (e,), flush=True)
        code = EXIT_FAIL
    finally:
        if world is not None:
            if code != EXIT_PASS:
                world.failed = True
            try:
                world.cleanup()
            except Exception:  # noqa: BLE001
                _say(traceback.format_exc())
                code = code or EXIT_HARNESS
            if world.cleanup_errors and code == EXIT_PASS:
                code = EXIT_FAIL
    log("%s (%.1fs): %s" % ({0: "PASS", 1: "FAIL", 99: "HARNESS ERROR"}
                            .get(code, str(code)), time.monotonic() - t0,
                            name))
    os._exit(code)
