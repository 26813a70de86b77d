#!/usr/bin/env python3
"""The systemd units in contrib/systemd/ and the man page docs/inboxctl.1.

  units_tests.py systemd_units   every process has a unit that runs a binary
                                 meson builds, checks its config first,
                                 restarts, is sandboxed; the webhooks unit
                                 never sees the store; `systemd-analyze
                                 verify` (when installed) finds nothing
  units_tests.py man_page        every command `inboxctl help` lists, and
                                 every option it names, is in the man page,
                                 which renders without warnings

Exit codes: 0 pass, 1 fail, 99 harness error.
env: INBOXD_BUILD, INBOXD_SRC.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback

SRC = os.environ.get("INBOXD_SRC") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("INBOXD_BUILD")
UNITS = os.path.join(SRC, "contrib", "systemd")
CONF = "/etc/inboxd/inboxd.conf"
STATE = "/var/lib/inboxd"


class Fail(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def parse_unit(path):
    """A unit file as {section: {key: [values...]}} (systemd keys may
    repeat; continuation lines and comments handled)."""
    out, sect, pending = {}, None, ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if pending:
                line = pending + line.lstrip()
                pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("[") and s.endswith("]"):
                sect = s[1:-1]
                check(sect not in out, "%s: section [%s] twice" % (path, sect))
                out[sect] = {}
                continue
            check(sect is not None and "=" in s,
                  "%s: line outside a section or without '=': %r" % (path, s))
            k, v = s.split("=", 1)
            out[sect].setdefault(k.strip(), []).append(v.strip())
    return out


def one(unit, sect, key, name):
    vals = unit.get(sect, {}).get(key)
    check(vals, "%s: [%s] %s= missing" % (name, sect, key))
    return vals[-1]


def meson_executables():
    """Names of the executables the project's meson.build files install."""
    names = set()
    for path in glob.glob(os.path.join(SRC, "**", "meson.build"),
                          recursive=True):
        rel = os.path.relpath(path, SRC)
        if rel.startswith(("build", "tests")):
            continue
        text = open(path, encoding="utf-8").read()
        calls = re.split(r"\bexecutable\(", text)[1:]
        for call in calls:
            m = re.match(r"\s*'([^']+)'", call)
            # the call's arguments end at the first ')' closing a line
            args = re.split(r"\)\s*\n", call, maxsplit=1)[0]
            if m and re.search(r"install\s*:\s*true", args):
                names.add(m.group(1))
    return names


def built(name):
    """Path of executable `name` in the build directory, or None."""
    if not BUILD:
        return None
    for path in glob.glob(os.path.join(BUILD, "**", name), recursive=True):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


SANDBOX = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict",
    "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes", "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service", "CapabilityBoundingSet": "",
}

PROGRAMS = {
    "inbox-router@.service": "inbox-router",
    "inbox-router-shard@.service": "inbox-router",
    "inbox-webhooks.service": "inbox-webhooks",
    "inbox-gateway.service": "inbox-gateway",
    "inbox-imap@.service": "inbox-imap",
}


def duration_s(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|min|)", v)
    check(m, "cannot read duration %r" % v)
    n = float(m.group(1))
    return n / 1000 if m.group(2) == "ms" else n * 60 \
        if m.group(2) == "min" else n


def test_systemd_units():
    files = sorted(os.listdir(UNITS))
    want = sorted(list(PROGRAMS) + ["inboxd.target"])
    check(sorted(f for f in files if not f.startswith("README")) == want,
          "contrib/systemd holds %s, expected %s" % (files, want))
    exes = meson_executables()
    for prog in PROGRAMS.values():
        check(prog in exes, "%s is not an executable meson installs (%s)"
              % (prog, sorted(exes)))
    units = {f: parse_unit(os.path.join(UNITS, f)) for f in want}
    for name, prog in PROGRAMS.items():
        u = units[name]
        svc = u.get("Service", {})
        inst = name.endswith("@.service")
        # ExecStart: the installed binary, the shared config
        start = one(u, "Service", "ExecStart", name)
        argv = start.split()
        check(argv[0] == "/usr/bin/" + prog,
              "%s: ExecStart runs %s, expected /usr/bin/%s" % (name, argv[0],
                                                               prog))
        check(os.path.basename(argv[0]) in exes,
              "%s: %s is not built by meson" % (name, argv[0]))
        check(argv[1] == "-c", "%s: ExecStart without -c first" % name)
        if prog == "inbox-imap":
            check(start == "/usr/bin/inbox-imap -c %s %%i" % CONF,
                  "%s: ExecStart is %r" % (name, start))
        elif "shard" in name:
            check(argv[2:] == [CONF, "-s", "%i"],
                  "%s: the instance must name the shard (%r)" % (name, start))
        elif prog == "inbox-router":
            check(argv[2] == "/etc/inboxd/%i.conf",
                  "%s: the instance must name the config file" % name)
        else:
            check(argv[2:] == [CONF], "%s: ExecStart is %r" % (name, start))
        # ExecStartPre: the same program checks the same config with -n
        pres = svc.get("ExecStartPre", [])
        check(any(p.split()[0] == argv[0] and "-n" in p.split()
                  and argv[2] in p.split() for p in pres),
              "%s: no ExecStartPre running %s -n on %s (%s)"
              % (name, prog, argv[2], pres))
        # restart, user, target
        check(one(u, "Service", "Restart", name) == "always",
              "%s: Restart= is not always" % name)
        rs = duration_s(one(u, "Service", "RestartSec", name))
        check(0.5 <= rs <= 30, "%s: RestartSec=%s s is not sane" % (name, rs))
        check(one(u, "Service", "User", name) == "inboxd",
              "%s: User= is not inboxd" % name)
        check(one(u, "Unit", "PartOf", name) == "inboxd.target",
              "%s: not PartOf=inboxd.target" % name)
        check("inboxd.target" in " ".join(u.get("Install", {}).get(
            "WantedBy", [])), "%s: not WantedBy=inboxd.target" % name)
        # sandboxing
        for k, v in SANDBOX.items():
            got = svc.get(k)
            check(got is not None and got[0] == v,
                  "%s: %s=%s expected (got %s)" % (name, k, v, got))
        check(set(svc.get("AmbientCapabilities", [""])) == {""},
              "%s: ambient capabilities" % name)
        nofile = int(one(u, "Service", "LimitNOFILE", name))
        # state directory: every process but the webhooks connector
        rw = " ".join(svc.get("ReadWritePaths", []))
        if prog == "inbox-webhooks":
            check("StateDirectory" not in svc and STATE not in rw,
                  "%s: the webhooks connector must not get the state "
                  "directory (it must not open LMDB)" % name)
            check(any(STATE in p for p in svc.get("InaccessiblePaths", [])),
                  "%s: %s not made inaccessible" % (name, STATE))
            check(not any("store" in v or STATE in v
                          for v in pres + [start]),
                  "%s: a store path on the command line" % name)
        else:
            check(one(u, "Service", "StateDirectory", name) == "inboxd",
                  "%s: StateDirectory= is not inboxd" % name)
            check(STATE in rw, "%s: %s not in ReadWritePaths" % (name, STATE))
        if prog == "inbox-gateway":
            check(nofile >= 65536, "%s: LimitNOFILE=%d is too low for 10,000"
                  " websockets" % (name, nofile))
        check(inst == ("%i" in start), "%s: instance use" % name)
    tgt = units["inboxd.target"]
    wants = " ".join(tgt.get("Unit", {}).get("Wants", []))
    for w in ("inbox-router@inboxd.service", "inbox-webhooks.service",
              "inbox-gateway.service"):
        check(w in wants, "inboxd.target does not want %s" % w)
    check(one(tgt, "Install", "WantedBy", "inboxd.target")
          == "multi-user.target", "inboxd.target: WantedBy")
    print("units: %d files parsed, every option present" % len(units))
    verify(units)


def verify(units):
    sa = shutil.which("systemd-analyze")
    if not sa:
        print("systemd-analyze not installed: verify not run")
        return
    tmp = tempfile.mkdtemp(prefix="inboxd-units-")
    try:
        paths = []
        for name, prog in PROGRAMS.items():
            exe = built(prog)
            if exe is None:
                raise Fail("%s is not built in %s" % (prog, BUILD))
            text = open(os.path.join(UNITS, name), encoding="utf-8").read()
            # the binaries as built, so verify finds them executable
            text = text.replace("/usr/bin/" + prog, exe)
            inst = name.replace("@.", "@0." if "shard" in name else
                                "@inboxd." if "router" in name
                                else "@mail1.")
            for n in {name, inst}:
                with open(os.path.join(tmp, n), "w") as f:
                    f.write(text)
            paths.append(os.path.join(tmp, inst))
        shutil.copy(os.path.join(UNITS, "inboxd.target"), tmp)
        paths.append(os.path.join(tmp, "inboxd.target"))
        cp = subprocess.run([sa, "verify", "--man=no"] + paths,
                            capture_output=True, text=True, timeout=60)
        out = (cp.stdout + cp.stderr).strip()
        print("systemd-analyze verify: rc %d%s" % (
            cp.returncode, (":\n" + out) if out else ", nothing to say"))
        check(cp.returncode == 0 and not out,
              "systemd-analyze verify complained:\n" + out)
        # the exposure rating, where this systemd can rate unit files
        cp = subprocess.run([sa, "security", "--offline=yes"] + paths[:-1],
                            capture_output=True, text=True, timeout=60)
        if cp.returncode != 0 and "offline" in cp.stderr:
            print("systemd-analyze security --offline not supported")
            return
        levels = re.findall(r"Overall exposure level for (\S+): ([\d.]+)",
                            cp.stdout)
        print("systemd-analyze security: %s" % ", ".join(
            "%s %s" % lv for lv in levels))
        check(len(levels) == len(paths) - 1,
              "security rated %d units:\n%s" % (len(levels),
                                                cp.stdout + cp.stderr))
        for unit, level in levels:
            check(float(level) <= 2.5,
                  "%s: exposure %s, above 2.5" % (unit, level))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def help_commands(text):
    """[(command words, [options])] from `inboxctl help`."""
    cmds = []
    for line in text.splitlines():
        m = re.match(r"^  (\S.*)$", line)
        if m:
            words = []
            for tok in m.group(1).split():
                if re.fullmatch(r"[a-z][a-z-]*", tok):
                    words.append(tok)
                else:
                    break
            cmds.append((" ".join(words), []))
        if cmds and line.startswith("  ") and not line.startswith("      "):
            cmds[-1][1].extend(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)",
                                          line))
        elif cmds and re.match(r"^ {7,}\[", line):
            cmds[-1][1].extend(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)",
                                          line))
    return cmds


def test_man_page():
    ctl = os.path.join(BUILD or "", "router", "inboxctl")
    if not os.access(ctl, os.X_OK):
        raise RuntimeError("inboxctl not built: %s" % ctl)
    cp = subprocess.run([ctl, "help"], capture_output=True, text=True,
                        timeout=30)
    check(cp.returncode == 0, "inboxctl help exited %d" % cp.returncode)
    cmds = help_commands(cp.stdout)
    check(len(cmds) >= 15 and ("help", []) in cmds,
          "could not read the commands of inboxctl help: %s" % cmds)
    page = os.path.join(SRC, "docs", "inboxctl.1")
    src = open(page, encoding="utf-8").read()
    missing = []
    for words, opts in cmds:
        # `.Cm agent add` (mdoc) or `.B agent add` (man)
        if not re.search(r"^\.(?:Cm|B|It Cm)\s+%s(\s|$)" % re.escape(words),
                         src, re.M):
            missing.append(words)
        for o in opts:
            if not re.search(r"(Fl|\\fB)\s*%s\b" % re.escape(o[1:]), src):
                missing.append("%s %s" % (words, o))
    check(not missing, "in `inboxctl help` but not in docs/inboxctl.1: %s"
          % missing)
    for sect in ("SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "FILES",
                 "ENVIRONMENT", "EXAMPLES"):
        check(re.search(r"^\.S[hH] \"?%s" % sect, src, re.M),
              "docs/inboxctl.1 has no %s section" % sect)
    print("man page: %d commands, %d options documented" % (
        len(cmds), sum(len(o) for _, o in cmds)))
    man = shutil.which("man")
    if not man:
        print("man not installed: rendering not checked")
        return
    env = dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8")
    cp = subprocess.run([man, "--warnings", "-l", page], capture_output=True,
                        text=True, timeout=60, env=env)
    check(cp.returncode == 0 and not cp.stderr.strip(),
          "man -l docs/inboxctl.1: rc %d\n%s" % (cp.returncode, cp.stderr))
    flat = re.sub(r"\s+", " ", cp.stdout)
    for words, _ in cmds:
        check(words in flat, "the rendered page lacks %r" % words)
    print("man -l renders %d lines, no warnings" % len(
        cp.stdout.splitlines()))


TESTS = {"systemd_units": test_systemd_units, "man_page": test_man_page}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        print("usage: %s %s" % (sys.argv[0], "|".join(TESTS)))
        sys.exit(99)
    try:
        TESTS[sys.argv[1]]()
    except Fail as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    except Exception:  # noqa: BLE001 - the harness failed, not the units
        traceback.print_exc()
        sys.exit(99)
    print("PASS: %s" % sys.argv[1])
    sys.exit(0)


if __name__ == "__main__":
    main()
