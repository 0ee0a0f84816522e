#!/usr/bin/env python3
"""Checks a META.json against the PGXN Meta Spec 1.0.0 (https://pgxn.org/spec/):
the required keys, the type and form of every key the spec defines (semantic
versions, terms, tags, licenses, prereqs, resources), no key it does not
define unless custom (x_...), and that the files it names are in the
distribution. Prints each problem and exits 1 if there is one.

Usage: check_meta.py META.json [DISTRIBUTION_DIR]
"""
import json
import os
import re
import sys

SEMVER = (r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
          r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
          r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?")
RANGE_PART = r"(?:(?:[=!]=|[<>]=?)\s*)?(?:" + SEMVER + r"|0)"
LICENSES = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd", "gfdl_1_2",
            "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1",
            "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source", "restricted",
            "unrestricted", "unknown"}
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}

problems = []


def bad(where, what):
    problems.append(f"{where}: {what}")


def custom(key):
    return re.match(r"^[xX]_.", key) is not None


def keys(where, obj, allowed, required=()):
    if not isinstance(obj, dict):
        bad(where, "must be an object")
        return False
    for k in required:
        if k not in obj:
            bad(where, f'"{k}" is required')
    for k in obj:
        if k not in allowed and not custom(k):
            bad(where, f'"{k}" is not defined by the spec (custom keys begin with x_)')
    return True


def string(where, value):
    if not isinstance(value, str) or value == "":
        bad(where, "must be a non-empty string")
        return False
    return True


def term(where, value):
    if string(where, value) and not re.fullmatch(r"[^/\\\s\x00-\x1f\x7f]{2,}", value):
        bad(where, f'"{value}" is not a term (2 or more characters, no slash, backslash, space or control)')


def version(where, value):
    if string(where, value) and not re.fullmatch(SEMVER, value):
        bad(where, f'"{value}" is not a semantic version')


def uri(where, value):
    if string(where, value) and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value):
        bad(where, f'"{value}" is not a URI')


def path(where, value, root):
    if string(where, value):
        if value.startswith("/") or "\\" in value:
            bad(where, f'"{value}" is not a relative Unix path')
        elif root and not os.path.exists(os.path.join(root, value)):
            bad(where, f'"{value}" is not in the distribution')


def check(meta, root):
    top = {"name", "version", "abstract", "maintainer", "license", "provides", "meta-spec", "description",
           "generated_by", "tags", "no_index", "prereqs", "release_status", "resources"}
    if not keys("META.json", meta, top, ["name", "version", "abstract", "maintainer", "license", "provides",
                                         "meta-spec"]):
        return
    spec = meta.get("meta-spec")
    if keys("meta-spec", spec, {"version", "url"}, ["version"]):
        if not re.fullmatch(r"1\.0\.\d+", str(spec.get("version"))):
            bad("meta-spec.version", "must be 1.0.x")
        if "url" in spec and spec["url"] not in ("https://pgxn.org/meta/spec.txt", "http://pgxn.org/meta/spec.txt"):
            bad("meta-spec.url", "must be https://pgxn.org/meta/spec.txt")
    term("name", meta.get("name"))
    version("version", meta.get("version"))
    for k in ("abstract", "description", "generated_by"):
        if k in meta:
            string(k, meta[k])
    m = meta.get("maintainer")
    if isinstance(m, list):
        if not m or len(set(map(str, m))) != len(m):
            bad("maintainer", "must be a non-empty list of different strings")
        for i, v in enumerate(m):
            string(f"maintainer[{i}]", v)
    else:
        string("maintainer", m)
    lic = meta.get("license")
    if isinstance(lic, str):
        if lic not in LICENSES:
            bad("license", f'"{lic}" is not one of the spec\'s license names')
    elif isinstance(lic, list):
        if not lic or any(v not in LICENSES for v in lic) or len(set(lic)) != len(lic):
            bad("license", "must be a non-empty list of the spec's license names")
    elif isinstance(lic, dict):
        if not lic:
            bad("license", "must name at least one license")
        for name, link in lic.items():
            uri(f"license.{name}", link)
    else:
        bad("license", "must be a string, a list or an object")
    provides = meta.get("provides")
    if isinstance(provides, dict) and provides:
        for name, ext in provides.items():
            term(f"provides key {name!r}", name)
            if keys(f"provides.{name}", ext, {"file", "version", "abstract", "docfile", "docpath"},
                    ["file", "version"]):
                path(f"provides.{name}.file", ext.get("file"), root)
                version(f"provides.{name}.version", ext.get("version"))
                if "docfile" in ext:
                    path(f"provides.{name}.docfile", ext["docfile"], root)
                for k in ("abstract", "docpath"):
                    if k in ext:
                        string(f"provides.{name}.{k}", ext[k])
    else:
        bad("provides", "must be an object naming at least one extension")
    if "release_status" in meta and meta["release_status"] not in ("stable", "testing", "unstable"):
        bad("release_status", "must be stable, testing or unstable")
    if "tags" in meta:
        tags = meta["tags"]
        if not isinstance(tags, list) or not tags or len(set(map(str, tags))) != len(tags):
            bad("tags", "must be a non-empty list of different tags")
        else:
            for i, t in enumerate(tags):
                if not isinstance(t, str) or not re.fullmatch(r"[^/\\\x00-\x1f\x7f]{2,255}", t):
                    bad(f"tags[{i}]", f"{t!r} is not a tag (2 to 255 characters, no slash, backslash or control)")
    if "prereqs" in meta and keys("prereqs", meta["prereqs"], PHASES):
        for phase, rels in meta["prereqs"].items():
            if custom(phase) or not keys(f"prereqs.{phase}", rels, RELATIONS):
                continue
            if not any(r in rels for r in RELATIONS):
                bad(f"prereqs.{phase}", "must have requires, recommends, suggests or conflicts")
            for rel, deps in rels.items():
                if custom(rel):
                    continue
                if not isinstance(deps, dict) or not deps:
                    bad(f"prereqs.{phase}.{rel}", "must be an object naming at least one prerequisite")
                    continue
                for dep, rng in deps.items():
                    term(f"prereqs.{phase}.{rel} key {dep!r}", dep)
                    ok = rng == 0 or (isinstance(rng, str) and
                                      re.fullmatch(RANGE_PART + r"(?:,\s*" + RANGE_PART + r")*", rng))
                    if not ok:
                        bad(f"prereqs.{phase}.{rel}.{dep}", f"{rng!r} is not a version range")
    if "resources" in meta and keys("resources", meta["resources"], {"homepage", "bugtracker", "repository"}):
        res = meta["resources"]
        if not any(k in res for k in ("homepage", "bugtracker", "repository")):
            bad("resources", "must have homepage, bugtracker or repository")
        if "homepage" in res:
            uri("resources.homepage", res["homepage"])
        if "bugtracker" in res and keys("resources.bugtracker", res["bugtracker"], {"web", "mailto"}):
            if "web" in res["bugtracker"]:
                uri("resources.bugtracker.web", res["bugtracker"]["web"])
        if "repository" in res and keys("resources.repository", res["repository"], {"url", "web", "type"}):
            for k in ("url", "web"):
                if k in res["repository"]:
                    uri(f"resources.repository.{k}", res["repository"][k])
    if "no_index" in meta and keys("no_index", meta["no_index"], {"file", "directory"}):
        for k, v in meta["no_index"].items():
            for i, p in enumerate(v if isinstance(v, list) else [v]):
                path(f"no_index.{k}[{i}]", p, None)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        try:
            meta = json.load(f)
        except json.JSONDecodeError as e:
            sys.exit(f"{sys.argv[1]}: not JSON: {e}")
    check(meta, sys.argv[2] if len(sys.argv) == 3 else None)
    for p in problems:
        print(f"{sys.argv[1]}: {p}")
    if problems:
        sys.exit(1)
    print(f"{sys.argv[1]}: valid against the PGXN Meta Spec 1.0.0")


if __name__ == "__main__":
    main()
