"""The harness around the clients: the fake server in its own process, and the connector (discover, read, measured).

    Server(python, name, sizes)      bench/server.py with a dataset of `sizes`; reset (faults), stats, touch, create,
                                     recent, times (conversation time records counted), stop
    Connector(executable)            catalog(...) writes a configured catalog; read(...) syncs it under `measure`
                                     and adds the server's counts (requests, bytes) and the code's fingerprint
    find_connector(given)            the source-kustomer to benchmark (--connector, else the repository's .venv)
    shown_executable(executable)     how the results name it (repository-relative, never a home or /tmp path)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.common import BENCH, NO_LIMIT, OUT, ROOT, in_repository, log, shown
from bench.measure import Measured, measure
from integration_tests.cli import configured_catalog  # stdlib only
from integration_tests.fake_kustomer import API_KEY

# The list streams, by the fake's list names (bench/server.py counts every list of `Dataset.resources`, the routing
# lists the fake makes on first use included): the derived streams (conversation_times, events and forwards: one
# request per conversation; satisfaction_responses, audit logs, deletions, kobjects_<klass>, sla_versions,
# business_schedule_holidays, custom_attribute_metadata, message_attachments) are left out, so that every client
# reads the same lists. A list the fake adds and this map does not name is refused by `list_streams`: a stream
# left out of the catalog would otherwise show as records missing.
STREAM_NAMES = {"routing/queues": "queues", "satisfaction": "satisfaction_surveys", "schedules": "business_schedules",
                "routing/work-sessions": "work_sessions", "routing/work-items": "work_items",
                "routing/statuses": "routing_statuses", "kb/articles": "kb_articles", "kb/categories": "kb_categories"}
SAME_NAMES = {"customers", "conversations", "messages", "notes", "users", "teams", "tags", "brands", "shortcuts",
              "companies", "klasses", "kobjects", "slas", "snoozes"}  # the fake's list name is the stream's


def list_streams(server) -> list[str]:
    unknown = [s for s in server.counts if s not in STREAM_NAMES and s not in SAME_NAMES]
    if unknown:
        raise SystemExit(f"the fake serves lists the benchmark does not map to a stream: {unknown} "
                         "(bench/harness.py STREAM_NAMES)")
    return [STREAM_NAMES.get(s, s) for s in server.counts]


# --- The fake server, in its own process ----------------------------------------------------------------------------


class Server:
    def __init__(self, python: str, name: str, sizes: dict[str, int]):
        self.name, self.sizes = name, sizes
        log(f"server {name}: building {json.dumps(sizes)} ...")
        started = time.perf_counter()
        self.log = open(OUT / f"server-{name}.log", "wb")
        self.process = subprocess.Popen([python, str(BENCH / "server.py"), "--sizes", json.dumps(sizes)],
                                        stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise SystemExit(f"the fake server did not start; see {OUT / f'server-{name}.log'}")
        _, self.url, counts = line.split(" ", 2)
        self.counts = json.loads(counts)
        log(f"server {name}: {sum(self.counts.values()):,} records at {self.url} "
            f"(built in {time.perf_counter() - started:.0f} s)")

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def reset(self, faults: dict | None = None) -> None:
        self.call("POST", "/bench/reset", {"faults": faults or {"rate_limit": NO_LIMIT}})

    def touch(self, stream: str, count: int, at: str, every: int = 1) -> list[str]:
        return self.call("POST", "/bench/touch", {"stream": stream, "count": count, "at": at, "every": every})["ids"]

    def create(self, stream: str, count: int, at: str) -> list[str]:
        return self.call("POST", "/bench/create", {"stream": stream, "count": count, "at": at})["ids"]

    def recent(self, stream: str, start: str, end: str) -> int:
        """Every record of `stream` created and updated at an instant spread from `start` to `end` (ISO times)."""
        return self.call("POST", "/bench/recent", {"stream": stream, "from": start, "to": end})["count"]

    def times(self, start: str | None = None, end: str | None = None, ids: list[str] | None = None) -> dict:
        """Conversation time records: {"all": n, "between": created from start to end, "of": of the conversations
        `ids`} (the last two when asked)."""
        return self.call("POST", "/bench/times", {"from": start, "to": end, "ids": ids})

    def stats(self) -> dict:
        return self.call("GET", "/bench/stats")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def min_pages(stats: dict, streams: list[str]) -> int:
    """Fewest list pages for `streams`; kobjects also needs the klasses list when klasses itself is not synced."""
    pages = stats["min_pages"]
    return sum(pages[s] for s in streams) + (pages["klasses"] if "kobjects" in streams and "klasses" not in streams
                                              else 0)


# --- The connector ----------------------------------------------------------------------------------------------


def code_fingerprint(package: Path) -> str:
    """A hash of the connector's package files, then git HEAD (+dirty): others may change the code while this runs.
    Runs are comparable when the hash (the first word) is the same."""
    digest = hashlib.sha1()
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml", ".yml", ".json"):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    git = ["git", "-C", str(package.parent)]
    top = subprocess.run([*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True).stdout.strip()
    if not top or Path(top).resolve() != package.parent.resolve():  # an installed copy, whatever repository holds it
        return f"{digest.hexdigest()[:10]} (installed, not a checkout)"
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True, text=True,
                           cwd=package).stdout.strip()
    return f"{digest.hexdigest()[:10]} (git {head or '?'}{' + uncommitted changes' if dirty else ''})"



def tree_state(checkout: Path = ROOT) -> str:
    """git HEAD of the checkout and what is uncommitted in it, outside bench/ (this benchmark's own files) and in the
    connector's package: "8502bab; uncommitted: 7 files outside bench/, none in source_kustomer/"."""
    git = ["git", "-C", str(checkout)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    if not head:
        return "not a git checkout"
    changed = [line[3:] for line in subprocess.run([*git, "status", "--porcelain"], capture_output=True,
                                                   text=True).stdout.splitlines() if line.strip()]
    outside = [path for path in changed if not path.startswith("bench/")]
    package = [path for path in changed if path.startswith("source_kustomer/")]
    if not outside:
        return f"{head}; nothing uncommitted outside bench/"
    return (f"{head}; uncommitted: {len(outside)} file{'s' * (len(outside) > 1)} outside bench/, "
            f"{f'{len(package)} in' if package else 'none in'} source_kustomer/")


def connector_version(connector: "Connector") -> str:
    """The version the connector's code says it is: the checkout's pyproject.toml for a checkout's package (an
    editable install's metadata keeps the version it was installed at), else the installed distribution's."""
    python = str(Path(connector.executable).with_name("python"))
    if connector.package is not None:
        pyproject = connector.package.parent / "pyproject.toml"
        if pyproject.exists():
            for line in pyproject.read_text().splitlines():
                if line.startswith("version"):
                    return line.split("=", 1)[1].strip().strip('"') + " (pyproject.toml)"
    return installed(python).get("version", "?")


# Where the connector's package is, and what pip recorded of its install (a commit when installed from git).
_INSTALLED = """
import json
found = {}
try:
    import source_kustomer
    found["file"] = source_kustomer.__file__
except Exception:
    pass
try:
    import importlib.metadata as m
    dist = m.distribution("source-kustomer")
    found["version"] = dist.version
    found["commit"] = json.loads(dist.read_text("direct_url.json") or "{}").get("vcs_info", {}).get("commit_id", "")
except Exception:
    pass
print(json.dumps(found))
"""


@functools.lru_cache(maxsize=None)
def installed(python: str) -> dict:
    """{"file": source_kustomer/__init__.py, "version": ..., "commit": ...} as far as the connector's Python knows."""
    done = subprocess.run([python, "-c", _INSTALLED], capture_output=True, text=True,
                          cwd="/")  # not a checkout in cwd
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def shown_executable(executable: str) -> str:
    """The connector as the results name it: relative to the repository when inside it (`.venv/bin/source-kustomer`);
    else by what is installed there, e.g. `<venv of commit abc1234>/bin/source-kustomer`, never its absolute path."""
    path = Path(os.path.abspath(executable))
    inside = in_repository(path)
    if inside is not None:
        return inside
    python = path.with_name("python")
    found = installed(str(python)) if python.exists() else {}
    commit = found.get("commit", "")[:7]
    if not commit and found.get("file") and "site-packages" not in found["file"]:  # editable, from a checkout
        checkout = Path(found["file"]).parent.parent
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    venv = path.parent.parent
    kind = "venv" if (venv / "pyvenv.cfg").exists() else "install"
    what = f"commit {commit}" if commit else f"source-kustomer {found['version']}" if found.get("version") else ""
    outside = f"{'a venv' if kind == 'venv' else 'an install'} outside the repository"
    return shown(path, f"{kind} of {what}" if what else outside, anchor=venv)


def find_connector(given: str | None) -> str:
    """The absolute path of the source-kustomer to run: `given` (--connector) if given; else the repository's .venv,
    else the one beside the Python running the benchmark, else the first on PATH. Usable: its Python imports the
    connector, orjson and requests."""
    candidates = [given] if given else [ROOT / ".venv/bin/source-kustomer",
                                        Path(sys.executable).with_name("source-kustomer"),
                                        shutil.which("source-kustomer")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            python = Path(candidate).with_name("python")
            if subprocess.run([str(python), "-c", "import source_kustomer, orjson, requests"],
                              capture_output=True).returncode == 0:
                return os.path.abspath(candidate)
    raise SystemExit(f"no usable source-kustomer among {[str(c) for c in candidates if c]}; pass --connector")


class Connector:
    def __init__(self, executable: str):
        self.executable = executable
        python = str(Path(executable).with_name("python"))
        where = installed(python).get("file", "")
        self.package = Path(where).parent if where else None
        self.shown = shown_executable(executable)  # for the results: never a home or /tmp path
        self.codes: list[tuple[str, str]] = []  # (run, code fingerprint) of every read

    def fingerprint(self) -> str:
        return code_fingerprint(self.package) if self.package else "unknown"

    def config(self, server: Server, percent: int = 100, extra: dict | None = None) -> dict:
        return {"organization": "acme", "api_key": API_KEY, "base_url": server.url, "max_api_usage_percent": percent,
                **(extra or {})}

    def catalog(self, server: Server, streams: list[str] | None = None, incremental: bool = False,
                tag: str = "") -> Path:
        name = f"{'all' if streams is None else len(streams)}{'-incremental' if incremental else ''}{tag}"
        path = OUT / f"catalog-{server.name}-{name}.json"
        config = self._write(f"config-{server.name}-discover.json", self.config(server))
        done = subprocess.run([self.executable, "discover", "--config", str(config)], capture_output=True,
                              timeout=300)
        catalogs = [json.loads(line)["catalog"] for line in done.stdout.splitlines()
                    if line.startswith(b'{"type":"CATALOG"')]
        if not catalogs:
            raise SystemExit(f"discover failed: {done.stdout[-2000:]!r} {done.stderr[-2000:]!r}")
        path.write_text(json.dumps(configured_catalog(catalogs[0], streams, incremental)))
        return path

    def read(self, label: str, server: Server, catalog: Path, percent: int = 100, tag: str = "",
             prefix: list[str] | None = None, timeout: float | None = 3 * 3600, state: dict | None = None,
             config: dict | None = None) -> Measured:
        """A sync, measured; `config`: more of the connector's config (e.g. start_date)."""
        config = self._write(f"config-{server.name}-{percent}{tag if config else ''}.json",
                             self.config(server, percent, config))
        cmd = [*(prefix or []), self.executable, "read", "--config", str(config), "--catalog", str(catalog)]
        if state is not None:
            cmd += ["--state", str(self._write(f"state-{server.name}{tag}.json", list(state.values())))]
        before = self.fingerprint()
        result = measure(label, cmd, "airbyte", OUT / f"connector-{server.name}{tag}.log", timeout=timeout,
                         wrap_time=not prefix)
        after = self.fingerprint()
        same = before.split()[0] == after.split()[0]
        self.codes.append((f"{label} ({server.name}{tag})", before if same else f"{before} -> {after}"))
        result.server = server.stats()
        return result

    @staticmethod
    def _write(name: str, value) -> Path:
        path = OUT / name
        path.write_text(json.dumps(value))
        return path


