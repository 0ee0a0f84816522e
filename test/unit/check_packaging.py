#!/usr/bin/env python3
"""One list of dependencies and one version, checked where they are repeated.

- scripts/dependencies (what scripts/deps.sh installs) against
  debian/control.in's Build-Depends, the `apt-get install` line and the
  broker table of README.md's "Install" section, the Makefile's broker
  libraries and the packages src/sink/sink.cpp names in its errors;
- the Makefile's EXTVERSION against outbox.control, META.json and
  debian/changelog.

Prints each disagreement; exits 1 if there is one.
Usage: check_packaging.py SOURCE_DIR
"""
import json
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
problems = []
BROKERS = ["nats", "amqp", "redis", "kafka"]
# Debian's build-essential: implied, and lintian refuses them in Build-Depends.
BUILD_ESSENTIAL = {"g++", "make"}


def read(name):
    with open(os.path.join(root, name), encoding="utf-8") as f:
        return f.read()


def differ(what, expected, got):
    if set(expected) != set(got):
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        problems.append(f"{what}: missing {missing}, not in scripts/dependencies {extra}")


groups = {}
for line in read("scripts/dependencies").splitlines():
    if line.strip() and not line.startswith("#"):
        name, *packages = line.split()
        groups[name] = packages
for g in ["build", *BROKERS, "demo", "node", "test", "package"]:
    if g not in groups:
        problems.append(f"scripts/dependencies has no group {g}")
build = groups.get("build", [])
broker_devs = [p for b in BROKERS for p in groups.get(b, [])]

# debian/control.in: what building needs, the server headers of every
# version (postgresql-server-dev-all), and debhelper.
control = read("debian/control.in")
m = re.search(r"^Build-Depends:(.*?)^\S", control, re.S | re.M)
build_depends = [re.split(r"[\s(]", d.strip())[0] for d in (m.group(1) if m else "").split(",") if d.strip()]
expected = [p.replace("postgresql-server-dev-NN", "postgresql-server-dev-all") for p in build + broker_devs
            if p not in BUILD_ESSENTIAL] + ["debhelper-compat"]
differ("debian/control.in Build-Depends", expected, build_depends)
for p in ("debhelper", "postgresql-server-dev-all"):
    if p not in groups.get("package", []):
        problems.append(f"scripts/dependencies: the package group lacks {p}, which debian/control.in needs")

# README.md "## Install": the apt-get line of a build from source, and a
# table row per broker naming its library and -dev package.
readme = read("README.md")
m = re.search(r"^## Install\n(.*?)^## ", readme, re.S | re.M)
install = m.group(1) if m else ""
if not install:
    problems.append('README.md has no "## Install" section')
lines = re.findall(r"apt-get install((?:[^\n]*\\\n)*[^\n]*)", install)
source_line = [l for l in lines if "postgresql-server-dev" in l]
if len(source_line) != 1:
    problems.append('README.md "Install": expected one `apt-get install` line for a build from source')
else:
    words = [w for w in re.sub(r"#[^\n]*", "", source_line[0]).replace("\\\n", " ").split() if not w.startswith("-")]
    words = [re.sub(r"^postgresql-server-dev-(\d+|NN)$", "postgresql-server-dev-NN", w) for w in words]
    differ('README.md "Install" apt-get line', build + broker_devs, words)

makefile = read("Makefile")
sink = read("src/sink/sink.cpp")
for b in BROKERS:
    devs = groups.get(b, [])
    lib = re.search(rf"^broker_library_{b} = (\S+)", makefile, re.M)
    lib = lib.group(1) if lib else None
    if lib is None:
        problems.append(f"Makefile: no broker_library_{b}")
    row = [l for l in install.splitlines() if l.startswith("|") and all(d in l for d in devs) and lib and lib in l]
    if not row:
        problems.append(f'README.md "Install": no table row naming {b}\'s library {lib} and package {devs}')
    entry = re.search(rf'\{{"{b}", "[^"]*", "([^"]*)", "([^"]*)"', sink)
    if not entry or entry.group(1) != lib or [entry.group(2)] != devs:
        problems.append(f"src/sink/sink.cpp protocols(): {b} must name {lib} and {devs}")

# One version.
version = re.search(r"^EXTVERSION = (\S+)", makefile, re.M).group(1)
found = {
    "outbox.control default_version": re.search(r"default_version = '([^']*)'", read("outbox.control")).group(1),
    "debian/changelog": re.match(r"\S+ \(([^)-]+)(?:-[^)]*)?\)", read("debian/changelog")).group(1),
}
meta = json.loads(read("META.json"))
found["META.json version"] = meta.get("version")
found["META.json provides.outbox.version"] = meta.get("provides", {}).get("outbox", {}).get("version")
for where, v in found.items():
    if v != version:
        problems.append(f"{where} is {v}, the Makefile's EXTVERSION {version}")

for p in problems:
    print(p)
if problems:
    sys.exit(1)
print(f"dependencies agree ({len(build)} build, {len(broker_devs)} broker packages); version {version} everywhere")
