"""Real mail servers for inbox-imap's tests: dovecot (IMAP, a temporary
configuration and Maildir, on a free loopback port) and an SMTP sink.
Each waits until it listens; each is stopped at cleanup."""

import imaplib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from inboxd_harness import HarnessError, _reserve_port, log  # noqa: E402

USER = "support@example.com"
PASSWORD = "imap-secret"


def _wait_port(port, proc, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise HarnessError("%s exited with %s" % (what, proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise HarnessError("%s did not listen on %d" % (what, port))


class Dovecot:
    def __init__(self, world, tls=False):
        if not shutil.which("dovecot"):
            raise HarnessError("dovecot not installed (dovecot-imapd)")
        self.w = world
        self.dir = os.path.join(world.tmp, "dovecot")
        self.port, _ = _reserve_port()
        self.tls = tls
        self.proc = None
        self.starts = 0
        for d in ("run", "home", "state"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        # dovecot drops to `nobody` for mail: let it in
        for d in (world.tmp, self.dir, os.path.join(self.dir, "home")):
            os.chmod(d, 0o755)
        os.chmod(os.path.join(self.dir, "home"), 0o777)
        world.extra_cleanup.append(self.stop)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        ssl = "ssl = no\n"
        if tls:
            cert = os.path.join(self.dir, "cert.pem")
            key = os.path.join(self.dir, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost",
                            "-keyout", key, "-out", cert],
                           check=True, capture_output=True)
            ssl = "ssl = yes\nssl_cert = <%s\nssl_key = <%s\n" % (cert, key)
        with open(self.conf, "w") as f:
            f.write("""protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {log}
info_log_path = {log}
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = static
  args = password={pw}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
mail_location = maildir:~/Maildir
first_valid_uid = 1
mailbox_idle_check_interval = 1 secs
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""".format(d=self.dir, log=self.log, ssl=ssl, pw=PASSWORD, port=self.port))
        self.start()

    def start(self):
        self.starts += 1
        out = open(os.path.join(self.dir, "stdout-%d.log" % self.starts),
                   "wb")
        # its own process group: stopping it stops its imap processes too,
        # which drops every client connection as a real restart does
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf],
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        self.w.logs.append(self.log)
        _wait_port(self.port, self.proc, "dovecot")
        log("dovecot started (port %d)" % self.port)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def client(self):
        c = imaplib.IMAP4("127.0.0.1", self.port)
        if self.tls:
            import ssl
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c.starttls(ctx)
        c.login(USER, PASSWORD)
        return c

    def append(self, raw, folder="INBOX"):
        """APPENDs one message (bytes or str) through IMAP."""
        if isinstance(raw, str):
            raw = raw.encode()
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        c = self.client()
        try:
            typ, data = c.append(folder, None, None, raw)
            if typ != "OK":
                raise HarnessError("APPEND: %s %s" % (typ, data))
        finally:
            c.logout()

    def maildir(self):
        return os.path.join(self.dir, "home", USER, "Maildir")

    def connector_conf(self, **kw):
        conf = {"channel": "email", "imap_host": "127.0.0.1",
                "imap_port": self.port,
                "imap_tls": "starttls" if self.tls else "none",
                "imap_verify": "no", "imap_user": USER,
                "imap_password": PASSWORD, "initial_sync": "all",
                "idle_interval": "5m", "poll_interval": "1s"}
        conf.update(kw)
        return conf


class SmtpSink:
    def __init__(self, world, fail_first=0, code=451):
        self.w = world
        self.dir = os.path.join(world.tmp, "smtp-sink")
        self.port, _ = _reserve_port()
        here = os.path.dirname(os.path.abspath(__file__))
        logpath = os.path.join(world.tmp, "smtp-sink.log")
        out = open(logpath, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(here, "smtp_sink.py"),
             str(self.port), self.dir, str(fail_first), str(code)],
            stdout=out, stderr=subprocess.STDOUT)
        out.close()
        world.logs.append(logpath)
        world.extra_cleanup.append(self.stop)
        _wait_port(self.port, self.proc, "smtp sink")
        log("smtp sink started (port %d)" % self.port)

    def messages(self):
        """[(envelope dict, raw bytes)] in the order received."""
        import json
        out = []
        if not os.path.isdir(self.dir):
            return out
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".eml"):
                base = os.path.join(self.dir, name[:-4])
                with open(base + ".json") as f:
                    env = json.load(f)
                with open(base + ".eml", "rb") as f:
                    out.append((env, f.read()))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
