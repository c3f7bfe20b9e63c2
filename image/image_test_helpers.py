"""Helpers of image/build_and_run.sh: host facts for the stand-in base image, and checks of the connector's output.

Standard library only (any Python 3.8+ runs it). Each subcommand prints what it found or asserted and exits non-zero
when an assertion fails:

    apt-mirrors SUITE             mmdebstrap mirror lines ("deb URI SUITE main") of the host's Debian sources for SUITE
    apt-options                   the host's apt options a snapshot mirror or a proxy needs (for mmdebstrap --aptopt)
    pip-setup                     the host's pip setup: "conf PATH", "file PATH", "dir PATH" and "env NAME=VALUE" lines
    image-config INSPECT KEY      from `buildah inspect` / `docker image inspect` JSON: Entrypoint (one element a line),
                                  User, or Env (one variable a line)
    build-inputs DOCKERFILE       a hash of the Dockerfile and the context files its COPY/ADD take (.dockerignore'd
                                  files left out), or "uncacheable" (ADD of a URL, COPY --from=...)
    check-spec OUT                OUT (connector stdout) has a SPEC with a connectionSpecification
    check-connection OUT          OUT has a CONNECTION_STATUS that SUCCEEDED
    configured-catalog OUT DEST S...   DEST = a full_refresh/overwrite catalog of streams S from OUT's CATALOG
    check-read OUT S=N...         OUT has exactly N RECORDs of each stream S, each stream COMPLETE, no error trace
"""

from __future__ import annotations

import configparser
import fnmatch
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter


def fail(message: str) -> None:
    print(f"  FAIL: {message}", flush=True)
    sys.exit(1)


def ok(message: str) -> None:
    print(f"  ok: {message}", flush=True)


# ---- apt: where the host gets Debian from ---------------------------------------------------------------------

def _sources() -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of every enabled `deb` source, one-line and deb822 formats."""
    found = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if not os.path.isfile(path):
            continue
        for line in open(path, encoding="utf-8", errors="replace"):
            line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # drop [arch=... signed-by=...]
            if len(line) >= 3 and line[0] == "deb":
                found.append((line[1], [line[2]], line[3:]))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        text = open(path, encoding="utf-8", errors="replace").read()
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            key = None
            for raw in stanza.splitlines():
                if raw.startswith("#"):
                    continue
                if raw[:1] in (" ", "\t") and key:
                    fields[key] += " " + raw.strip()
                elif ":" in raw:
                    key, value = raw.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                found.append((uri, fields.get("suites", "").split(), fields.get("components", "").split()))
    return found


def apt_mirrors(suite: str) -> None:
    wanted = [suite, f"{suite}-updates", f"{suite}-security"]
    lines = []
    for uri, suites, components in _sources():
        for s in suites:
            if s in wanted and "main" in components:
                line = f"deb {uri} {s} main"
                if line not in lines:
                    lines.append(line)
    if not any(f" {suite} " in line for line in lines):
        fail(f"no Debian '{suite} main' source in /etc/apt/sources.list(.d); set IMAGE_DEBIAN_MIRROR")
    print("\n".join(lines))


def apt_options() -> None:
    """Options of `apt-config dump` that a mirror needs: proxies, and the date checks a snapshot mirror turns off."""
    dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, check=True).stdout
    for line in dump.splitlines():
        m = re.match(r'^(Acquire::(?:[\w-]+::)?(?:Proxy|Check-Valid-Until|Check-Date)) "(.*)";$', line, re.I)
        if m:
            print(f'{m.group(1)} "{m.group(2)}"')


# ---- pip: how the host reaches PyPI ---------------------------------------------------------------------------

PATH_KEYS = ("cert", "client-cert", "constraint", "requirement", "find-links", "index-url", "extra-index-url")


def pip_setup() -> None:
    """The pip configuration files and PIP_* variables of the host, and the local files and folders they name.

    Files (a CA bundle, a constraints file) are copied into the stand-in base; folders (a local wheelhouse or
    simple index) are bind-mounted while building; remote URLs need nothing.
    """
    home = os.path.expanduser("~")
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    candidates = [os.path.join(d, "pip", "pip.conf") for d in xdg_dirs] + ["/etc/pip.conf",
                  os.path.join(home, ".pip", "pip.conf"),
                  os.path.join(os.environ.get("XDG_CONFIG_HOME", os.path.join(home, ".config")), "pip", "pip.conf")]
    if os.environ.get("PIP_CONFIG_FILE") not in (None, "", os.devnull):
        candidates.append(os.environ["PIP_CONFIG_FILE"])
    values: list[tuple[str, str]] = []
    for path in dict.fromkeys(candidates):
        if not os.path.isfile(path):
            continue
        print(f"conf {os.path.abspath(path)}")
        parser = configparser.RawConfigParser()
        parser.read(path)
        for section in ("global", "install", "download", "wheel"):
            if parser.has_section(section):
                values += [(k, parser.get(section, k)) for k in PATH_KEYS if parser.has_option(section, k)]
    for name, value in sorted(os.environ.items()):
        if name.startswith("PIP_") and name not in ("PIP_CONFIG_FILE", "PIP_REQUIRE_VIRTUALENV", "PIP_USER",
                                                    "PIP_TARGET", "PIP_PREFIX"):
            print(f"env {name}={value}")
            if name[4:].lower().replace("_", "-") in PATH_KEYS:
                values.append((name[4:].lower().replace("_", "-"), value))
    seen = set()
    for key, value in values:
        for item in value.split():
            path = (item[len("file://"):] if item.startswith("file://") else item).rstrip("/") or "/"
            if key.endswith("index-url") and os.path.basename(path) == "simple":
                path = os.path.dirname(path)  # a local simple index links to files beside it (../../files/...)
            if not path.startswith("/") or path in seen:
                continue
            seen.add(path)
            if os.path.isdir(path):
                print(f"dir {path}")
            elif os.path.isfile(path):
                print(f"file {path}")


def image_config(path: str, key: str) -> None:
    data = json.load(open(path, encoding="utf-8"))
    if isinstance(data, list):  # docker image inspect
        config = data[0].get("Config") or {}
    else:  # buildah inspect: the OCI image configuration
        config = (data.get("OCIv1") or {}).get("config") or {}
    value = config.get(key)
    if isinstance(value, list):
        print("\n".join(value))
    elif value:
        print(value)


# ---- build inputs: when the image is up to date ----------------------------------------------------------------

def _dockerignore(context: str) -> list[str] | None:
    path = os.path.join(context, ".dockerignore")
    if not os.path.isfile(path):
        return []
    patterns = [line.strip() for line in open(path, encoding="utf-8") if line.strip() and not line.startswith("#")]
    if any(p.startswith("!") for p in patterns):
        return None  # exceptions: leave nothing out (a wrong hit is worse than a rebuild)
    return [p.strip("/") for p in patterns]


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for pattern in patterns:
        # `**/x` matches x at any depth; a pattern matching a folder leaves out everything below it
        candidates = [pattern] + ([pattern[3:]] if pattern.startswith("**/") else [])
        for cand in candidates:
            depth = cand.count("/") + 1
            for i in range(len(parts)):
                if pattern.startswith("**/") and cand is not pattern:
                    window = "/".join(parts[i:i + depth])
                elif i == 0:
                    window = "/".join(parts[:depth])
                else:
                    continue
                if fnmatch.fnmatchcase(window, cand):
                    return True
    return False


def build_inputs(dockerfile: str) -> None:
    context = os.path.dirname(os.path.abspath(dockerfile))
    text = open(dockerfile, encoding="utf-8").read()
    digest = hashlib.sha256(text.encode())
    patterns = _dockerignore(context)
    instructions = re.sub(r"\\\n", " ", text).splitlines()
    sources: list[str] = []
    for line in instructions:
        words = line.strip()
        m = re.match(r"(?i)^(COPY|ADD)\s+(.*)$", words)
        if not m:
            continue
        rest = m.group(2).strip()
        if rest.startswith("["):
            args = json.loads(rest)
        else:
            args = [a for a in rest.split() if not a.startswith("--")]
            if any(a.startswith("--from") for a in rest.split()):
                print("uncacheable")
                return
        for src in args[:-1]:
            if "://" in src:
                print("uncacheable")
                return
            sources.append(src)
    files = set()
    for src in sources:
        for match in glob.glob(os.path.join(context, src)) or [os.path.join(context, src)]:
            if os.path.isdir(match):
                for root, dirs, names in os.walk(match):
                    files.update(os.path.join(root, n) for n in names)
            else:
                files.add(match)
    for path in sorted(files):
        rel = os.path.relpath(path, context)
        if patterns is not None and _ignored(rel, patterns):
            continue
        digest.update(f"\0{rel}\0".encode())
        if os.path.isfile(path):
            digest.update(oct(os.stat(path).st_mode & 0o777).encode())
            digest.update(open(path, "rb").read())
        else:
            digest.update(b"missing")
    print(digest.hexdigest())


# ---- the connector's Airbyte messages -------------------------------------------------------------------------

def messages(path: str) -> list[dict]:
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def of_type(path: str, kind: str) -> list[dict]:
    return [m for m in messages(path) if m.get("type") == kind]


def check_spec(path: str) -> None:
    specs = of_type(path, "SPEC")
    if len(specs) != 1:
        fail(f"expected 1 SPEC message, got {len(specs)}")
    props = specs[0]["spec"].get("connectionSpecification", {}).get("properties", {})
    for field in ("organization", "api_key"):
        if field not in props:
            fail(f"spec has no '{field}' field (fields: {', '.join(props)})")
    ok(f"spec fields: {', '.join(props)}")


def check_connection(path: str) -> None:
    statuses = of_type(path, "CONNECTION_STATUS")
    if not statuses:
        fail("no CONNECTION_STATUS message")
    status = statuses[0]["connectionStatus"]
    if status.get("status") != "SUCCEEDED":
        fail(f"check {status.get('status')}: {status.get('message')}")
    ok("check SUCCEEDED")


def configured_catalog(path: str, dest: str, streams: list[str]) -> None:
    catalogs = of_type(path, "CATALOG")
    if not catalogs:
        fail("no CATALOG message")
    by_name = {s["name"]: s for s in catalogs[0]["catalog"]["streams"]}
    missing = [s for s in streams if s not in by_name]
    if missing:
        fail(f"discover has no stream {', '.join(missing)} (streams: {', '.join(by_name)})")
    catalog = {"streams": [{"stream": by_name[s], "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
                           for s in streams]}
    with open(dest, "w", encoding="utf-8") as f:
        json.dump(catalog, f)
    ok(f"discover: {len(by_name)} streams; configured {', '.join(streams)} (full_refresh, overwrite)")


def check_read(path: str, expected: list[str]) -> None:
    msgs = messages(path)
    counts = Counter(m["record"]["stream"] for m in msgs if m.get("type") == "RECORD")
    errors = [m["trace"].get("error", {}).get("message") for m in msgs
              if m.get("type") == "TRACE" and m["trace"].get("type") == "ERROR"]
    if errors:
        fail(f"read emitted error traces: {errors[:3]}")
    complete = {m["trace"]["stream_status"]["stream_descriptor"]["name"] for m in msgs
                if m.get("type") == "TRACE" and m["trace"].get("type") == "STREAM_STATUS"
                and m["trace"]["stream_status"].get("status") == "COMPLETE"}
    failed = []
    for item in expected:
        stream, n = item.split("=")
        if counts.get(stream, 0) != int(n) or stream not in complete:
            failed.append(f"{stream}: {counts.get(stream, 0)} records (expected {n})"
                          + ("" if stream in complete else ", not COMPLETE"))
        else:
            ok(f"read {stream}: {n} RECORD messages, stream COMPLETE")
    extra = set(counts) - {item.split("=")[0] for item in expected}
    if extra:
        failed.append(f"records of unselected streams: {', '.join(sorted(extra))}")
    if failed:
        fail("; ".join(failed))


def main(argv: list[str]) -> None:
    command, args = argv[0], argv[1:]
    if command == "apt-mirrors":
        apt_mirrors(args[0])
    elif command == "apt-options":
        apt_options()
    elif command == "pip-setup":
        pip_setup()
    elif command == "image-config":
        image_config(args[0], args[1])
    elif command == "build-inputs":
        build_inputs(args[0])
    elif command == "check-spec":
        check_spec(args[0])
    elif command == "check-connection":
        check_connection(args[0])
    elif command == "configured-catalog":
        configured_catalog(args[0], args[1], args[2:])
    elif command == "check-read":
        check_read(args[0], args[1:])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
