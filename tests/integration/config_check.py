#!/usr/bin/env python3
"""Every executable checks a config with -n: the example passes with
"configuration OK"; a bad file fails naming file, line and key."""
import os
import subprocess
import sys
import tempfile

build = os.path.abspath(os.environ["INBOXD_BUILD"])
src = os.environ["INBOXD_SRC"]
exes = ["router/inbox-router", "router/inboxctl",
        "connectors/webhooks/inbox-webhooks", "ws_gateway/inbox-gateway"]
bad_cases = [
    ("[redis]\nhost = x\nport = 99999\n", "bad.conf:3: key 'port'",
     "out of bounds"),
    ("[redis]\nbogus = 1\n", "bad.conf:2: key 'bogus'", "unknown key"),
    ("[connector a b]\nchannel = api\n", "bad.conf:1:", "invalid connector id"),
    ("[connector x]\nsecret = s\n", "bad.conf:1: key 'channel'", "no channel"),
    ("[log]\nlevel = loud\n", "bad.conf:2: key 'level'", "unknown level"),
]
failures = []

with tempfile.TemporaryDirectory() as tmp:
    bad = os.path.join(tmp, "bad.conf")
    for exe in exes:
        path = os.path.join(build, exe)
        r = subprocess.run([path, "-n", "-c",
                            os.path.join(src, "contrib/inboxd.conf.example")],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or "configuration OK" not in r.stdout:
            failures.append("%s -n on the example: rc %d, %r %r"
                            % (exe, r.returncode, r.stdout, r.stderr))
        for text, where, what in bad_cases:
            with open(bad, "w") as f:
                f.write(text)
            r = subprocess.run([path, "-n", "-c", bad], capture_output=True,
                               text=True, timeout=30, cwd=tmp)
            if r.returncode == 0 or where not in r.stderr or \
                    what not in r.stderr:
                failures.append("%s -n on %r: rc %d, stderr %r (want %r, %r)"
                                % (exe, text, r.returncode, r.stderr, where,
                                   what))
        r = subprocess.run([path, "-n", "-c", os.path.join(tmp, "missing")],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0 or "cannot read" not in r.stderr:
            failures.append("%s on a missing file: rc %d %r"
                            % (exe, r.returncode, r.stderr))

for f in failures:
    print("FAIL:", f)
print("%d checks failed" % len(failures) if failures else "all config checks passed")
sys.exit(1 if failures else 0)
