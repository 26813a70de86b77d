#!/usr/bin/env python3
"""A real SMTP server (the standard library's smtpd) that keeps every
message it accepts as DIR/<n>.eml with DIR/<n>.json (envelope sender and
recipients). Usage: smtp_sink.py PORT DIR [FAIL_FIRST_N [CODE]]: the
first FAIL_FIRST_N messages are refused with CODE (default 451). Prints
"ready" once it listens."""

import asyncore  # noqa: F401  (smtpd needs it; both are in Python 3.11)
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import smtpd  # noqa: E402


class Sink(smtpd.SMTPServer):
    def __init__(self, addr, out, fail_first, code):
        super().__init__(addr, None, decode_data=False)
        self.out = out
        self.n = 0
        self.fail_left = fail_first
        self.code = code

    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        if self.fail_left > 0:
            self.fail_left -= 1
            return "%d try again later (sink told to refuse)" % self.code
        self.n += 1
        base = os.path.join(self.out, "%04d" % self.n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(data)
        with open(base + ".json", "w") as f:
            json.dump({"from": mailfrom, "to": rcpttos}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return None


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    fail = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    code = int(sys.argv[4]) if len(sys.argv) > 4 else 451
    os.makedirs(out, exist_ok=True)
    Sink(("127.0.0.1", port), out, fail, code)
    print("ready", flush=True)
    asyncore.loop()


if __name__ == "__main__":
    main()
