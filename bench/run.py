#!/usr/bin/env python3
"""Benchmark of `source-kustomer` against the fake Kustomer API, with the Singer tap and a raw HTTP floor beside it.

    python bench/run.py [--customers 50000 --conversations 100000 --messages 300000] [--quick] [--profile]
                        [--scenarios throughput,ratelimit,scaling] [--rounds 3]
    python bench/run.py --scenarios tricks --connector NEW --baseline-connector OLD [--results bench/out/tricks.md]
    python bench/run.py --scenarios firstsync [--connector X] [--firstsync-streams] [--results bench/out/firstsync.md]

One run, everything side by side on the same machine (ratios mean something; absolute speeds do not):

1. throughput  one fake server (its own process) with the chosen sizes; full-refresh syncs of
               - source-kustomer, every stream;
               - the raw floor (bench/floor.py: requests + orjson, the same list pages), 1 and 2 threads;
               - the Python pipeline without the CDK (floor.py --as-records: the floor, plus each record flattened,
                 handed to the main thread and written as an Airbyte RECORD line), 2 threads: the least a
                 connector of the CDK's shape does, so what a ratio to the floor can reach at all;
               - --rounds alternating runs of source-kustomer and the floors in all (default 3, the first above): the
                 0.5x-floor target takes the median of the rounds' ratios, as one sync varies by up to ~10%;
               - source-kustomer and the Singer tap-kustomer 1.1.0 (own venv bench/.venv-singer, run through
                 bench/singer_shim.py: pointed at the fake, self-throttle off) on the 9 streams the tap has,
                 the tap under a timeout (it loops forever when more than a page of records share one updatedAt)
2. ratelimit   a smaller org (default 20,000 customers + small streams) whose fake enforces a rate limit
               (default 600 requests per 10 s, searches 17 per 10 s) and a tighter one that binds (100 per 10 s),
               synced with max_api_usage_percent 100 and 50, against the minimum the allowed share permits
3. scaling     full syncs at two sizes (default 10,000 and 200,000 customers, the other streams at their small
               default sizes): how wall time and peak RSS grow
4. headers, idle  the budget without a reset header; incremental syncs after a first one (see their functions)
5. tricks      (not in the default --scenarios; needs --baseline-connector) two connectors side by side, alternating
               within each of --tricks-rounds rounds (default 3; who goes first alternates too), against one server
               (--tricks-sizes, default 3,000 customers, 3,000 conversations, 3,000 messages + small streams, the 14
               list streams): the one --connector names ("new") and --baseline-connector ("old"), at each of
               --tricks-latencies (default 0,0.3,1 seconds per answer, bench/server.py --latency: requests wait in
               parallel). Latency 0: no rate limit, CPU-bound, as a local fake. Above 0: a budget that binds,
               --tricks-limit requests a minute (default 300, Kustomer's smallest plan), scaled to --rate-window
               windows (50 per 10 s) with reset headers, max_api_usage_percent 50 (2.5 requests/s). Three list streams
               page at once at most (concurrency 3), each one page at a time, so a page's latency caps a sync at
               about 3 / latency requests/s: the sizes spread the pages over three streams so that the budget, not
               one stream's pages in turn, sets the pace. --tricks-incremental: first incremental syncs (no state)
               instead of full refresh. Reports medians and the ratio new/old of wall and CPU time
               (median of the rounds' ratios). Made to measure what a speed trick is worth at realistic latency.
6. firstsync  (not in the default --scenarios) how close a first sync comes to the least time the rate budget
               allows (issue 16): one org of --firstsync-customers (default 30,000: 300 pages of 100; 3,000 with
               --quick), the customers list alone, full refresh, at each of --firstsync-latencies (default 0,0.3,1 s
               per answer) x each of --firstsync-resets (default "epoch,none": the fake's X-Ratelimit-Reset on every
               response, and none as live), against --firstsync-limit requests per --rate-window (default 160 per
               10 s) at max_api_usage_percent --firstsync-percent (default 50): 8 requests/s allowed. Reports wall,
               budget min (requests served / allowed rate), their ratio, the goal wall <= 1.25 x budget min + 10 s,
               the most requests in flight at the server, requests over the minimum pages, 429s, records, peak RSS.
               A run past the goal (for the fewest pages) + 5 s is stopped and its ratio projected
               (--firstsync-timeout SECONDS overrides; 0: never stop). --firstsync-streams: also every list stream
               as a first incremental sync (no state), the same rows again. Six runs of at most about a minute
               each at the defaults (a run that meets the goal takes 30-57 s): under 6 min in all.
   --profile   one more full sync of scenario 1 under py-spy (bench/.venv-tools, created from PyPI on first use),
               stopped after --profile-seconds (default 90), summarised by component and by function

The connector is whichever source-kustomer --connector names (default: .venv's, else /tmp/venv's). An editable
install runs the working tree as it is at each run, so every connector run records a fingerprint of the code and
the results say if it changed during the benchmark.

Measured per run: wall time (process start to exit, startup included), records (RECORD lines counted as they
stream by; nothing is kept), requests and response-body bytes (counted by the server, bench/server.py),
peak RSS of the client process (/usr/bin/time -v, else the kernel's rusage of the child via os.wait4), CPU time.
Prints one Markdown table per scenario and rewrites the generated part of bench/results.md (or of --results); the
hand-written "## What we tried" section at its end is kept. Logs, configs and catalogs go to bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
RESULTS = BENCH / "results.md"
sys.path.insert(0, str(ROOT))

from integration_tests.cli import configured_catalog, stamps  # noqa: E402  (stdlib only)
from integration_tests.fake_kustomer import API_KEY  # noqa: E402

SINGER_VENV = BENCH / ".venv-singer"
TOOLS_VENV = BENCH / ".venv-tools"
SINGER_PACKAGE = "tap-kustomer==1.1.0"
SINGER_STREAMS = ["customers", "conversations", "messages", "notes", "kobjects", "users", "teams", "tags", "shortcuts"]
# The list streams, by the fake's list names: the derived streams (conversation_times: one request per conversation,
# satisfaction_responses, audit logs, kobjects_<klass>) are left out, so that every client reads the same lists.
STREAM_NAMES = {"routing/queues": "queues", "satisfaction": "satisfaction_surveys", "schedules": "business_schedules"}


def list_streams(server) -> list[str]:
    return [STREAM_NAMES.get(s, s) for s in server.counts]
NO_LIMIT = 10**9  # the fake always sends x-ratelimit-* headers; "no rate limit" is a limit nothing reaches
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None
TRIED_HEADING = "## What we tried"
MB = 1024 * 1024

# Targets the team aims for, reported next to the measurements.
TARGET_VS_SINGER, TARGET_VS_FLOOR = 3.0, 0.5
TARGET_RATE_SLACK, TARGET_EXTRA_REQUESTS = 0.10, 0.01
TARGET_RSS_MB, TARGET_RSS_GROWTH = 250.0, 0.15

_children: set[int] = set()  # process groups to end if the benchmark itself is interrupted


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- Running a client and measuring it ------------------------------------------------------------------------------


@dataclass
class Measured:
    label: str
    wall: float = 0.0
    first_record: float | None = None  # seconds from start to the first RECORD (startup, discovery of partitions)
    records: Counter = field(default_factory=Counter)  # per stream, as emitted
    unique: Counter = field(default_factory=Counter)  # per stream, distinct ids (Singer runs only)
    last_new: float | None = None  # seconds from start to the last record with a new id (Singer runs only)
    last_stream: str | None = None
    returncode: int | None = None
    timed_out: bool = False
    peak_rss_mb: float | None = None
    cpu_s: float | None = None
    errors: list[str] = field(default_factory=list)
    pauses: int = 0  # "Kustomer rate limit: pausing" log lines
    stdout_tail: bytes = b""  # the floor's JSON summary
    server: dict = field(default_factory=dict)  # /bench/stats after the run
    states: dict = field(default_factory=dict)  # the last STATE message of each stream

    @property
    def total(self) -> int:
        return sum(self.records.values())

    @property
    def rate(self) -> float:
        return self.total / self.wall if self.wall else 0.0

    @property
    def steady_rate(self) -> float | None:
        """Records per second from the first record on: without the startup."""
        busy = self.wall - (self.first_record or 0)
        return self.total / busy if self.first_record is not None and busy > 0 else None


# A quote inside a JSON string is escaped, so these never match inside a record's data.
_RECORD = re.compile(rb'\{"type":"RECORD","record":\{"stream":"([^"]+)"')
_SINGER_RECORD = re.compile(rb'^\{"type": ?"RECORD", ?"stream": ?"([^"]+)"')
F_SETPIPE_SZ = 1031  # Linux: a 1 MB pipe lets the client write on while this process counts


def _consume(stream, mode: str, result: Measured, started: float) -> None:
    """Counts records as they stream by, a megabyte at a time; keeps only counts, error messages and a short tail.
    The Airbyte count runs in C (regex + Counter.update), so the reader costs the client next to nothing."""
    seen: set = set()
    names: Counter = Counter()
    tail, pending = b"", b""
    fd = stream.fileno()
    while True:
        chunk = os.read(fd, 1 << 20)
        data = pending + chunk
        cut = len(data) if not chunk else data.rfind(b"\n") + 1
        block, pending = data[:cut], data[cut:]
        if mode in ("airbyte", "records") and block:
            found = _RECORD.findall(block)
            if found:
                if result.first_record is None:
                    result.first_record = time.perf_counter() - started
                names.update(found)
            if b'"type":"ERROR"' in block:
                for line in block.splitlines():
                    if line.startswith(b'{"type":"TRACE"') and b'"type":"ERROR"' in line[:60]:
                        try:
                            result.errors.append(json.loads(line)["trace"]["error"]["message"])
                        except (ValueError, KeyError):
                            result.errors.append(line[:300].decode(errors="replace"))
            result.pauses += block.count(b"rate limit: pausing")
            if b'{"type":"STATE"' in block:
                for line in block.splitlines():
                    if line.startswith(b'{"type":"STATE"'):
                        state = json.loads(line)["state"]
                        result.states[state["stream"]["stream_descriptor"]["name"]] = state
        elif mode == "singer" and block:
            now = time.perf_counter() - started
            for line in block.splitlines():
                match = _SINGER_RECORD.match(line)
                if not match:
                    continue
                if result.first_record is None:
                    result.first_record = now
                name = match[1].decode()
                result.records[name] += 1
                result.last_stream = name
                key = (name, json.loads(line)["record"].get("id"))
                if key not in seen:
                    seen.add(key)
                    result.unique[name] += 1
                    result.last_new = now
        if mode in ("raw", "records") and block:  # keep the end (the floor prints one JSON line last)
            tail = (tail + block[-65536:])[-65536:]
        if not chunk:
            break
    for name, count in names.items():
        result.records[name.decode()] += count
    result.stdout_tail = tail


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _client_pids(wrapper: int) -> list[int]:
    """The children of a wrapper process (GNU time, py-spy): the client; the wrapper itself if none is found."""
    pids = []
    for children in Path(f"/proc/{wrapper}/task").glob("*/children"):
        try:
            pids += [int(pid) for pid in children.read_text().split()]
        except OSError:
            pass
    return pids or [wrapper]


def measure(label: str, cmd: list[str], mode: str, log_path: Path, timeout: float | None = None,
            env: dict | None = None, wrap_time: bool = True) -> Measured:
    """Runs `cmd` in its own process group, counting its stdout; wall time, peak RSS and CPU of the process."""
    result = Measured(label)
    rss_file = None
    if GNU_TIME and wrap_time:
        rss_file = OUT / f".time-{os.getpid()}.txt"
        cmd = [GNU_TIME, "-v", "-o", str(rss_file), *cmd]
    wrapped = rss_file is not None or not wrap_time  # not wrap_time: the caller's command is itself a wrapper
    with open(log_path, "wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=env, start_new_session=True)
    _children.add(process.pid)
    try:
        import fcntl

        fcntl.fcntl(process.stdout.fileno(), F_SETPIPE_SZ, 1 << 20)
    except (ImportError, OSError):
        pass
    reader = threading.Thread(target=_consume, args=(process.stdout, mode, result, started), daemon=True)
    reader.start()
    timers: list[threading.Timer] = []

    def stop() -> None:
        # SIGTERM to the client itself, not to a wrapper: GNU time then still reports, and py-spy writes its
        # samples when its child exits. (SIGINT would not do: a benchmark started in the background by a
        # non-interactive shell passes SIGINT on as ignored.)
        result.timed_out = True
        for pid in _client_pids(process.pid) if wrapped else [process.pid]:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        timers.append(threading.Timer(15, _signal_group, (process.pid, signal.SIGKILL)))
        timers[-1].start()

    if timeout:
        timers.append(threading.Timer(timeout, stop))
        timers[0].start()
    _, status, usage = os.wait4(process.pid, 0)  # the rusage of this very child
    result.wall = time.perf_counter() - started
    for timer in timers:
        timer.cancel()
    process.returncode = result.returncode = os.waitstatus_to_exitcode(status)
    _children.discard(process.pid)
    _signal_group(process.pid, signal.SIGKILL)  # anything the client left behind in its group
    reader.join(60)
    result.peak_rss_mb = usage.ru_maxrss / 1024
    result.cpu_s = usage.ru_utime + usage.ru_stime
    if rss_file and rss_file.exists():
        text = rss_file.read_text()
        if m := re.search(r"Maximum resident set size \(kbytes\): (\d+)", text):
            result.peak_rss_mb = int(m[1]) / 1024
        if m := re.search(r"Exit status: (\d+)", text):
            result.returncode = int(m[1])
        rss_file.unlink()
    return result


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

    def touch(self, stream: str, count: int, at: str) -> list[str]:
        return self.call("POST", "/bench/touch", {"stream": stream, "count": count, "at": at})["ids"]

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


# --- The three clients -------------------------------------------------------------------------------------------


def code_fingerprint(package: Path) -> str:
    """A hash of the connector's package files, then git HEAD (+dirty): others may change the code while this runs.
    Runs are comparable when the hash (the first word) is the same."""
    digest = hashlib.sha1()
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml", ".yml", ".json"):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    git = ["git", "-C", str(package.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True, text=True,
                           cwd=package).stdout.strip()
    return f"{digest.hexdigest()[:10]} (git {head or '?'}{' + uncommitted changes' if dirty else ''})"


class Connector:
    def __init__(self, executable: str):
        self.executable = executable
        python = str(Path(executable).with_name("python"))
        where = subprocess.run([python, "-c", "import source_kustomer; print(source_kustomer.__file__)"],
                               capture_output=True, text=True, cwd="/").stdout.strip()  # not a checkout in cwd
        self.package = Path(where).parent if where else None
        self.codes: list[tuple[str, str]] = []  # (run, code fingerprint) of every read

    def fingerprint(self) -> str:
        return code_fingerprint(self.package) if self.package else "unknown"

    def config(self, server: Server, percent: int = 100) -> dict:
        return {"organization": "acme", "api_key": API_KEY, "base_url": server.url, "max_api_usage_percent": percent}

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
             prefix: list[str] | None = None, timeout: float | None = 3 * 3600, state: dict | None = None) -> Measured:
        config = self._write(f"config-{server.name}-{percent}.json", self.config(server, percent))
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


def ensure_venv(venv: Path, packages: list[str], check: str) -> Path:
    """A virtualenv under bench/ with `packages`, created (from PyPI) if absent; returns its python."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0:
        return python
    log(f"creating {venv.relative_to(ROOT)} with {' '.join(packages)} (PyPI) ...")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
                   check=True)
    return python


def singer_read(server: Server, timeout: float) -> Measured:
    python = ensure_venv(SINGER_VENV, [SINGER_PACKAGE],
                         "import importlib.metadata as m; assert m.version('tap-kustomer') == '1.1.0'")
    env = dict(os.environ, KUSTOMER_BASE_URL=server.url)
    config = OUT / "singer-config.json"  # user_agent: the tap raises KeyError without it
    config.write_text(json.dumps({"api_token": API_KEY, "start_date": "2000-01-01T00:00:00Z", "user_agent": "bench"}))
    shim = [str(python), str(BENCH / "singer_shim.py"), "-c", str(config)]
    done = subprocess.run([*shim, "--discover"], capture_output=True, env=env, timeout=300)
    catalog = json.loads(done.stdout)
    # Select every stream; order them smallest first (by the fake's sizes), so the tap finishes what it can
    # before it meets a big stream whose ties it cannot page past.
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = True
    catalog["streams"].sort(key=lambda e: server.counts.get(e["tap_stream_id"], 0))
    path = OUT / f"singer-catalog-{server.name}.json"
    path.write_text(json.dumps(catalog))
    server.reset()
    result = measure("Singer tap-kustomer 1.1.0 (unthrottled)", [*shim, "--catalog", str(path)], "singer",
                     OUT / f"singer-{server.name}.log", timeout=timeout, env=env)
    result.server = server.stats()
    return result


PIPELINE = "Python pipeline without the CDK (floor + flatten, records handed to the main thread and written), 2 threads"


def floor_read(python: str, server: Server, threads: int, streams: list[str], as_records: bool = False) -> Measured:
    server.reset()
    label = PIPELINE if as_records else f"raw floor (requests + orjson), {threads} thread{'s' * (threads > 1)}"
    result = measure(label, [python, str(BENCH / "floor.py"), "--base-url", server.url, "--threads", str(threads),
                             "--streams", ",".join(streams), *(["--as-records"] if as_records else [])],
                     "records" if as_records else "raw",
                     OUT / f"floor-{server.name}-{threads}{'-records' if as_records else ''}.log")
    result.server = server.stats()
    try:
        summary = json.loads(result.stdout_tail.strip().splitlines()[-1])
        result.records = Counter({s: v["records"] for s, v in summary["streams"].items()})  # its own count
        result.errors = summary["errors"]
    except (ValueError, IndexError) as error:
        result.errors = [f"no summary from floor.py: {error!r}"]
    return result


# --- Profiling ----------------------------------------------------------------------------------------------------


def profile(connector: Connector, server: Server, catalog: Path, seconds: float) -> tuple[Measured, list[str]]:
    python = ensure_venv(TOOLS_VENV, ["-r", str(BENCH / "requirements.txt")],
                         "import importlib.metadata as m; m.version('py-spy')")
    py_spy = str(python.with_name("py-spy"))
    raw = OUT / "profile.raw.txt"
    raw.unlink(missing_ok=True)
    server.reset()
    # py-spy starts the connector as its child (attaching to a running process needs more privileges). Stopped
    # with SIGINT after `seconds`: py-spy writes its samples and the connector exits.
    prefix = [py_spy, "record", "--nonblocking", "--rate", "100", "--format", "raw", "--output", str(raw), "--"]
    result = connector.read("source-kustomer under py-spy", server, catalog, tag="-profile", prefix=prefix,
                            timeout=seconds or None)
    return result, summarise_profile(raw)


# Where the connector's time goes: the first rule (in this order) that matches any frame of a sample's stack.
PROFILE_BUCKETS = [
    ("startup: imports, manifest, building the streams", r"importlib|get_attributes_doc|yaml/|_create_source|"
     r"model_to_component_factory|manifest_component_transformer|manifest_reference_resolver|pydantic|jsonschema|"
     r"ConcurrentDeclarativeSource\.(__init__|streams|_group_streams)"),
    ("records: the connector's own parse of each page + flatten (components: parse_once, JsonApiRecords; orjson)",
     r"parse_once|JsonApiRecords\.|flatten \(.*components\.py"),
    ("paginator: next link (NextLink, from the parsed page)",
     r"PaginationDecoderDecorator\.decode|NextLink\.next_page_token|CursorPaginationStrategy"),
    ("error handler: response filters parse the page again (stdlib json)",
     r"HttpResponseFilter\.|JsonErrorMessageParser|DefaultErrorHandler\.interpret_response"),
    ("cursor: updatedAt parsed per record (client-side incremental filter, state observe)",
     r"should_be_synced|state_converter|ConcurrentCursor\.observe|DatetimeParser|_strptime|MinMaxDatetime"),
    ("Jinja interpolation (other)", r"jinja2/|/interpolation/"),
    ("record pipeline glue (selector generators, Record objects, transformations)",
     r"record_selector\.py|record_filter\.py|transformations/"),
    ("hand-off of records from the workers to the main thread (Queue.put)", r"Queue\.put"),
    ("HTTP: requests, urllib3, sockets, backoff", r"requests/|urllib3/|socket\.py|http/client\.py|ssl\.py"),
    ("main thread: waiting on the record queue (idle, sampled as busy)", r"Condition\.wait|Queue\.get"),
    ("main thread: messages, state, serialisation, secret filter, print", r"airbyte_message_to_string|print_buffer|"
     r"serpyco_rs/_main|filter_secrets|concurrent_read_processor|_handle_item|entrypoint\.py|run\.py"),
]


def summarise_profile(raw: Path, top: int = 12) -> list[str]:
    """Sample shares per bucket above, and the functions with the most samples of their own."""
    if not raw.exists():
        return ["(py-spy wrote no profile: see bench/out/connector-*-profile.log)"]
    own, buckets, total = Counter(), Counter(), 0
    rules = [(label, re.compile(pattern)) for label, pattern in PROFILE_BUCKETS]

    def name(frame: str) -> str:
        m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
        function, path = (m[1], m[2]) if m else (frame, "")
        path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path)
        return f"{function} ({path})"

    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        own[name(stack.split(";")[-1])] += int(count)
        buckets[next((label for label, rule in rules if rule.search(stack)), "other")] += int(count)
    if not total:
        return ["(empty profile)"]
    lines = [f"{total:,} samples (100 Hz, every thread, idle threads excluded)", "",
             "by component (first matching rule, in this order, over the whole stack):"]
    lines += [f"  {buckets[label] / total:6.1%}  {label}" for label, _ in PROFILE_BUCKETS + [("other", "")]
              if buckets[label]]
    lines += ["", "functions with the most samples of their own (C code counts for its Python caller):"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    (OUT / "profile.txt").write_text("\n".join(lines) + "\n")
    return lines


# --- Formatting ---------------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def f1(x) -> str:
    return "" if x is None else f"{x:,.1f}"


def n0(x) -> str:
    return "" if x is None else f"{x:,.0f}"


def ratio(a: float, b: float) -> float | None:
    return a / b if a and b else None


def status(result: Measured, expected: int | None = None) -> str:
    if result.timed_out:
        return "timed out"
    if result.returncode:
        return f"exit {result.returncode}, {len(result.errors)} errors"
    if result.errors:
        return f"{len(result.errors)} errors"
    if expected is not None and result.total != expected:
        return f"{result.total - expected:+,} records vs the data"
    return "ok"


def met(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "**no**")


# --- Scenarios ----------------------------------------------------------------------------------------------------


def throughput(args, python: str, connector: Connector, report: dict) -> None:
    sizes = {"customers": args.customers, "conversations": args.conversations, "messages": args.messages}
    server = Server(python, "main", sizes)
    try:
        all_streams = list(server.counts)
        catalog_all = connector.catalog(server, list_streams(server))
        catalog_tap = connector.catalog(server, SINGER_STREAMS)
        runs = []
        server.reset()
        log("throughput: source-kustomer, every stream ...")
        runs.append(("all", connector.read("source-kustomer", server, catalog_all)))
        for threads in (1, 2):
            log(f"throughput: raw floor, {threads} thread(s) ...")
            runs.append(("all", floor_read(python, server, threads, all_streams)))
        log("throughput: the Python pipeline without the CDK ...")
        runs.append(("all", floor_read(python, server, 2, all_streams, as_records=True)))
        server.reset()
        log("throughput: source-kustomer, the tap's 9 streams ...")
        runs.append(("tap", connector.read("source-kustomer", server, catalog_tap, tag="-9")))
        log(f"throughput: Singer tap-kustomer (timeout {args.singer_timeout:.0f} s) ...")
        runs.append(("tap", singer_read(server, args.singer_timeout)))
        # The same data as a first incremental sync (no state): the lists again, and the cursor keeps the state.
        server.reset()
        log("throughput: source-kustomer, every stream, first incremental sync ...")
        catalog_incremental = connector.catalog(server, list_streams(server), incremental=True)
        runs.append(("all", connector.read("source-kustomer, first incremental sync", server, catalog_incremental,
                                           tag="-incremental")))
        # Machine noise moves one sync by up to ~10%: the floor target takes the median of alternating rounds.
        rounds = [(runs[0][1], runs[1][1], runs[2][1])]
        for number in range(2, args.rounds + 1):
            server.reset()
            log(f"throughput: round {number} of {args.rounds}, source-kustomer and the raw floors ...")
            again = connector.read("source-kustomer", server, catalog_all, tag=f"-round{number}")
            rounds.append((again, *(floor_read(python, server, threads, all_streams) for threads in (1, 2))))
        report["floor_ratios"] = [ratio(c.rate, max(a.rate, b.rate)) for c, a, b in rounds]
        if args.profile:
            log("profile: source-kustomer under py-spy, every stream ...")
            report["profile"] = profile(connector, server, catalog_all, args.profile_seconds)
        stats_counts = server.counts
    finally:
        server.stop()

    rows = []
    for which, r in runs:
        streams = all_streams if which == "all" else SINGER_STREAMS
        expected = sum(stats_counts[s] for s in streams)
        pages = min_pages(r.server, streams)
        singer = r.label.startswith("Singer")
        records = f"{r.total:,}" + (f" ({sum(r.unique.values()):,} distinct)" if singer else "")
        rows.append([r.label, len(streams), singer_status(r) if singer else status(r, expected),
                     f1(r.wall), f1(r.first_record), records, n0(r.rate), n0(r.steady_rate),
                     f"{r.server['api_requests']:,}", "" if singer else f"{pages:,}",
                     "" if singer else f"{r.server['api_requests'] / pages - 1:+.1%}",
                     f1(r.server["bytes"] / MB), f1(r.peak_rss_mb), f"{r.cpu_s / r.wall:.0%}" if r.wall else ""])
    report["throughput_runs"] = runs
    report["extra_requests"] = [runs[0][1].server["api_requests"] / min_pages(runs[0][1].server, all_streams) - 1,
                                runs[4][1].server["api_requests"] / min_pages(runs[4][1].server, SINGER_STREAMS) - 1]
    report["tables"].append((
        f"Throughput: full refresh, {sizes['customers']:,} customers, {sizes['conversations']:,} conversations, "
        f"{sizes['messages']:,} messages + small streams ({sum(stats_counts.values()):,} records)",
        table(["client", "streams", "result", "wall s", "1st record s", "records", "records/s",
               "records/s after 1st record", "requests", "min pages", "requests over min", "MB received",
               "peak RSS MB", "CPU/wall"], rows)))

    expected = sum(stats_counts[s] for s in all_streams)
    rows = [[number, status(c, expected), f1(c.wall), n0(c.rate), n0(a.rate), n0(b.rate), f"{r:.2f}" if r else "n/a"]
            for number, ((c, a, b), r) in enumerate(zip(rounds, report["floor_ratios"]), 1)]
    report["tables"].append((
        f"Source-kustomer against the raw floor, {len(rounds)} alternating rounds (round 1 is the table above)",
        table(["round", "result", "source-kustomer wall s", "source-kustomer records/s", "floor, 1 thread records/s",
               "floor, 2 threads records/s", "source-kustomer / faster floor"], rows)))

    # Per stream: what the connector and the tap each delivered.
    connector_tap, singer = runs[4][1], runs[5][1]
    rows = [[s, f"{stats_counts[s]:,}", f"{connector_tap.records[s]:,}", f"{singer.records[s]:,}",
             f"{singer.unique[s]:,}"] for s in sorted(SINGER_STREAMS, key=lambda s: stats_counts[s])]
    report["tables"].append((
        "Records per stream, source-kustomer vs the Singer tap (the tap searches, which sees only the last two "
        "years, and re-emits boundary records)",
        table(["stream", "in the data", "source-kustomer", "Singer emitted", "Singer distinct"], rows)))


def singer_status(r: Measured) -> str:
    if r.timed_out:
        stalled = r.wall - (r.last_new or 0)
        if r.last_new is not None and stalled > 5:
            return (f"did not finish (loop on ties in {r.last_stream}: no new record in its last {stalled:.0f} s)")
        return "did not finish in the timeout (still progressing)"
    return "ok" if r.returncode == 0 else f"exit {r.returncode}"


def ratelimit(args, python: str, connector: Connector, report: dict) -> None:
    server = Server(python, "ratelimit", {"customers": args.rl_customers})
    rows, runs = [], []
    try:
        catalog = connector.catalog(server, list_streams(server))
        streams = list(server.counts)
        server.reset()
        log("ratelimit: unthrottled baseline ...")
        base = connector.read("no limit", server, catalog, percent=100, tag="-rl-base")
        runs.append((None, 100, base))
        for limit in args.rate_limits:
            for percent in (100, 50):
                server.reset({"rate_limit": limit, "rate_window": args.rate_window, "reset_header": "epoch",
                              "search_rate_limit": args.search_rate_limit})
                log(f"ratelimit: {limit} per {args.rate_window:g} s, max_api_usage_percent {percent} ...")
                runs.append((limit, percent, connector.read(f"{limit}/{args.rate_window:g}s at {percent}%", server,
                                                            catalog, percent=percent, tag=f"-rl-{limit}-{percent}")))
    finally:
        server.stop()
    pages = min_pages(base.server, streams)
    expected = sum(server.counts.values())
    worst = 0.0
    for limit, percent, r in runs:
        allowed = None if limit is None else limit * percent / 100 / args.rate_window  # requests per second
        budget = None if allowed is None else pages / allowed
        floor = max(budget or 0, base.wall)
        per_window = None if limit is None else int(limit * percent / 100)
        # Fixed windows: all but the last window's share must wait for their window to end.
        windows_min = None if limit is None else (-(-pages // per_window) - 1) * args.rate_window
        if budget and budget >= base.wall:  # the budget binds: the target is about these runs
            worst = max(worst, r.wall / budget)
        fake = r.server["fake"]
        rows.append([
            "none" if limit is None else f"{limit} / {args.rate_window:g} s", f"{percent}%",
            "" if allowed is None else f"{allowed:.1f}", f"{pages:,}", f"{r.server['api_requests']:,}",
            fake["rate_limited"], "" if per_window is None else f"{fake['max_per_window']} ({per_window})",
            f1(r.wall), f1(budget), f1(windows_min),
            "" if not budget else f"{r.wall / budget:.2f}" + ("" if budget >= base.wall else " (not binding)"),
            f"{r.wall / floor:.2f}",
            r.pauses, status(r, expected), "; ".join(r.errors)[:200]])
    report["rate_worst"] = worst or None  # None: no run where the budget binds
    report["rate_runs"] = runs
    report["tables"].append((
        f"Rate-limited sync: {args.rl_customers:,} customers + small streams ({expected:,} records); the fake "
        f"enforces the limit per fixed window and {args.search_rate_limit} searches per window",
        table(["limit", "usage", "allowed req/s", "pages needed", "requests", "429s",
               "most in one window (share)", "wall s", "budget min s", "window-bound min s", "wall / budget min",
               "wall / max(budget min, unthrottled)", "pauses logged", "result", "errors"], rows)))


def scaling(args, python: str, connector: Connector, report: dict) -> None:
    runs = []
    for customers in args.scale_customers:
        server = Server(python, f"scale-{customers}", {"customers": customers})
        try:
            catalog = connector.catalog(server, list_streams(server))
            server.reset()
            log(f"scaling: {customers:,} customers ...")
            result = connector.read(f"{customers:,} customers", server, catalog, tag="-scale")
            runs.append((customers, sum(server.counts.values()), result))
        finally:
            server.stop()
    rows = [[f"{c:,}", f"{n:,}", status(r, n), f1(r.wall), f1(r.first_record), n0(r.rate), n0(r.steady_rate),
             f"{r.server['api_requests']:,}", f1(r.peak_rss_mb)] for c, n, r in runs]
    if len(runs) >= 2:
        (c0, n0_, r0), (c1, n1, r1) = runs[0], runs[-1]
        growth = r1.peak_rss_mb / r0.peak_rss_mb - 1
        report["rss_growth"] = growth
        steady = f"x{r1.steady_rate / r0.steady_rate:.2f}" if r1.steady_rate and r0.steady_rate else ""
        rows.append([f"x{c1 / c0:g}", f"x{n1 / n0_:.1f}", "", f"x{r1.wall / r0.wall:.1f}", "",
                     f"x{r1.rate / r0.rate:.2f}", steady, "", f"{growth:+.1%}"])
    report["scale_runs"] = runs
    report["tables"].append((
        "Scaling: full refresh of every stream at two sizes (customers scaled, the other streams at their small "
        "default sizes)",
        table(["customers", "records", "result", "wall s", "1st record s", "records/s", "records/s after 1st record",
               "requests", "peak RSS MB"], rows)))


def headers(args, python: str, connector: Connector, report: dict) -> None:
    """Kustomer's minute, with the reset header in each form live responses may take: none (as recorded), epoch
    seconds, seconds from now; the budget binds, and nothing else uses the org."""
    server = Server(python, "headers", {"customers": args.header_customers})
    limit, percent, rows = args.header_limit, 50, []
    try:
        catalog = connector.catalog(server, list_streams(server))
        streams = list(server.counts)
        for form in ("none", "epoch", "delta"):
            server.reset({"rate_limit": limit, "rate_window": 60.0, "reset_header": form})
            log(f"headers: {limit} a minute at {percent}%, reset header {form} ...")
            r = connector.read(f"reset header {form}", server, catalog, percent=percent, tag=f"-headers-{form}")
            pages = min_pages(r.server, streams)
            share = limit * percent / 100
            budget = r.server["api_requests"] / (share / 60)
            fake = r.server["fake"]
            rows.append([form, f"{limit} / 60 s", f"{percent}%", f"{r.server['api_requests']:,}", f"{pages:,}",
                         f"{fake['max_per_window']} ({share:g} + 5%: {share + limit * 0.05:g})", fake["rate_limited"],
                         f1(r.wall), f1(budget), f"{r.wall / budget:.2f}", r.pauses,
                         status(r, sum(server.counts.values())), "; ".join(r.errors)[:200]])
    finally:
        server.stop()
    report["tables"].append((
        f"The budget without a reset header: {args.header_customers:,} customers + small streams, full refresh, the "
        "fake counting per clock minute (budget min = requests / allowed rate)",
        table(["reset header", "limit", "usage", "requests", "min pages", "most in one minute (target)", "429s",
               "wall s", "budget min s", "wall / budget min", "pauses logged", "result", "errors"], rows)))


def idle(args, python: str, connector: Connector, report: dict) -> None:
    """Incremental syncs after a first one, at two org sizes (the data streams x1 and x10 of the fake's defaults;
    users, teams, tags and the other configuration lists keep theirs): nothing changed, then 10 conversations."""
    from integration_tests.fake_kustomer import DEFAULT_SIZES

    data = ("customers", "companies", "conversations", "messages", "notes", "audit-logs", "kobject.order",
            "kobject.subscription")
    rows = []
    for scale in (1, 10):
        server = Server(python, f"idle-x{scale}", {name: DEFAULT_SIZES[name] * scale for name in data})
        try:
            catalog = connector.catalog(server, None, incremental=True)
            streams = len(json.loads(catalog.read_text())["streams"])
            server.reset()
            log(f"idle: x{scale}, first incremental sync ...")
            first = connector.read(f"x{scale} first", server, catalog, tag=f"-idle{scale}-first")
            runs = [("first incremental sync", first)]
            server.reset()
            log(f"idle: x{scale}, nothing changed ...")
            runs.append(("nothing changed", connector.read(f"x{scale} idle", server, catalog, state=first.states,
                                                           tag=f"-idle{scale}-idle")))
            end = max(stamp for state in runs[-1][1].states.values() for stamp in stamps(state["stream"]["stream_state"]))
            at = (dt.datetime.fromisoformat(end.replace("Z", "+00:00")) + dt.timedelta(milliseconds=1))
            server.touch("conversations", 10, at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z")
            server.reset()
            log(f"idle: x{scale}, 10 conversations changed ...")
            runs.append(("10 conversations changed", connector.read(f"x{scale} changed", server, catalog,
                                                                    state=runs[-1][1].states, tag=f"-idle{scale}-10")))
        finally:
            server.stop()
        for what, r in runs:
            routes = r.server["routes"]
            rows.append([f"x{scale}", f"{sum(server.counts.values()):,}", what, streams, f"{r.server['api_requests']:,}",
                         f"{r.server['api_requests'] / streams:.1f}", routes.get("GET /v1/conversations/<id>/times", 0),
                         f"{r.total:,}", f1(r.wall), "; ".join(r.errors)[:200] or "ok"])
    report["tables"].append((
        "Incremental syncs after the first, at two org sizes: what a sync costs when nothing or little changed",
        table(["data", "records in the org", "sync", "streams", "requests", "requests per stream",
               "of which conversation times", "records", "wall s", "errors"], rows)))


def tricks(args, python: str, connector: Connector, report: dict) -> None:
    """Two connectors (new: --connector, old: --baseline-connector), alternating, at each latency; see the docstring."""
    pair = {"new": connector, "old": Connector(find_connector(args.baseline_connector))}
    server = Server(python, "tricks", args.tricks_sizes)
    per_window = round(args.tricks_limit * args.rate_window / 60)
    rows = []
    try:
        streams = list(server.counts)
        catalogs = {who: c.catalog(server, list_streams(server), incremental=args.tricks_incremental, tag=f"-{who}")
                    for who, c in pair.items()}
        for latency in args.tricks_latencies:
            limited = latency > 0
            faults = {"latency": latency, "rate_limit": per_window if limited else NO_LIMIT,
                      "rate_window": args.rate_window, "reset_header": "epoch",
                      "search_rate_limit": args.search_rate_limit if limited else None}
            percent = 50 if limited else 100
            runs: dict[str, list[Measured]] = {"new": [], "old": []}
            for number in range(1, args.tricks_rounds + 1):
                for who in (("new", "old") if number % 2 else ("old", "new")):
                    server.reset(faults)
                    log(f"tricks: latency {latency:g} s, round {number} of {args.tricks_rounds}, {who} ...")
                    runs[who].append(pair[who].read(f"{who}, latency {latency:g} s", server, catalogs[who],
                                                    percent=percent, tag=f"-tricks-{who}-{latency:g}-{number}"))
            new, old = runs["new"], runs["old"]
            pages = min_pages(new[0].server, streams)
            allowed = per_window * percent / 100 / args.rate_window if limited else None

            def med(values: list[float]) -> float:
                return statistics.median(values)

            def each(values: list[float]) -> str:
                return f"{med(values):.1f}" + (f" ({', '.join(f'{v:.1f}' for v in values)})" if len(values) > 1 else "")

            def both(get) -> str:
                return " / ".join(f"{get(r):,}" for r in (new[0], old[0]))

            expected = sum(server.counts.values())
            results = sorted({status(r, expected) for r in new + old})
            rows.append([
                f"{latency:g}", f"{args.tricks_limit} / min as {per_window} / {args.rate_window:g} s, {percent}%"
                if limited else "none, 100%", f1(pages / allowed) if allowed else "", each([r.wall for r in new]),
                each([r.wall for r in old]), f"{med([n.wall / o.wall for n, o in zip(new, old)]):.2f}",
                each([r.cpu_s for r in new]), each([r.cpu_s for r in old]),
                f"{med([n.cpu_s / o.cpu_s for n, o in zip(new, old)]):.2f}", both(lambda r: r.total),
                both(lambda r: r.server["api_requests"]),
                " / ".join(f1(max(r.peak_rss_mb for r in rs)) for rs in (new, old)),
                " / ".join(f"{max(r.server['fake']['rate_limited'] for r in rs)}" for rs in (new, old)),
                ", ".join(results)])
    finally:
        server.stop()
    report["tables"].append((
        f"Speed tricks: new vs old, {args.tricks_rounds} alternating rounds, "
        f"{'first incremental sync' if args.tricks_incremental else 'full refresh'} of "
        f"{', '.join(f'{n:,} {s}' for s, n in args.tricks_sizes.items())} + small streams "
        f"({sum(server.counts.values()):,} records, {len(streams)} list streams), each answer held `latency` s",
        f"- new: {pair['new'].executable} ({pair['new'].fingerprint()})\n"
        f"- old: {pair['old'].executable} ({pair['old'].fingerprint()})\n"
        "- wall and CPU s: median (each round); new/old: median of the rounds' ratios; records, requests: round 1; "
        "peak RSS: the rounds' maximum\n\n" +
        table(["latency s", "rate limit, usage", "budget min s", "new wall s", "old wall s", "wall new/old",
               "new CPU s", "old CPU s", "CPU new/old", "records new / old", "requests new / old",
               "peak RSS MB new / old", "429s new / old", "result"], rows)))


def firstsync(args, python: str, connector: Connector, report: dict) -> None:
    """A first sync against a binding budget, at each latency, with and without reset headers; see the docstring."""
    limit, window, percent = args.firstsync_limit, args.rate_window, args.firstsync_percent
    allowed = limit * percent / 100 / window  # requests per second
    server = Server(python, "firstsync", {"customers": args.firstsync_customers})
    forms = {"epoch": "yes (epoch)", "delta": "yes (delta)", "on_429": "on 429s only", "none": "none"}
    sets = [("customers, full refresh", ["customers"], ["customers"], False)]
    if args.firstsync_streams:
        sets.append(("every list stream, first incremental sync", list_streams(server), list(server.counts), True))
    rows, started, first_code = [], time.perf_counter(), len(connector.codes)
    try:
        for what, streams, fake_streams, incremental in sets:
            catalog = connector.catalog(server, streams, incremental=incremental, tag="-firstsync")
            expected = sum(server.counts[s] for s in fake_streams)
            for latency in args.firstsync_latencies:
                for form in args.firstsync_resets:
                    server.reset({"latency": latency, "rate_limit": limit, "rate_window": window,
                                  "reset_header": form})
                    pages = min_pages(server.stats(), fake_streams)
                    # Past the goal (for the fewest pages) the row's answer is "no": stop there, and project.
                    timeout = (args.firstsync_timeout if args.firstsync_timeout is not None
                               else 1.25 * pages / allowed + 10 + 5) or None
                    log(f"firstsync: {what}, latency {latency:g} s, reset header {form} "
                        f"(timeout {timeout or 0:.0f} s) ...")
                    r = connector.read(f"{what}, latency {latency:g} s, reset header {form}", server, catalog,
                                       percent=percent, timeout=timeout,
                                       tag=f"-firstsync-{len(streams)}-{latency:g}-{form}")
                    rows.append(firstsync_row(what, latency, forms.get(form, form), r, pages, expected, allowed,
                                              len(sets) > 1))
    finally:
        server.stop()
    took = time.perf_counter() - started
    customers = args.firstsync_customers
    codes = connector.codes[first_code:]
    if len({code.split()[0] for _, code in codes}) <= 1:
        code_text = f"- connector: {connector.executable} ({codes[0][1] if codes else connector.fingerprint()})\n"
    else:  # someone changed the code during the runs: say which run saw which code
        code_text = (f"- connector: {connector.executable}, **its code changed during these runs** (compare "
                     "only rows with the same code):\n" + "".join(f"  - {run}: {code}\n" for run, code in codes))
    share = limit * percent / 100  # requests per window
    pages = -(-customers // 100)
    window_bound = (-(-pages // max(1, int(share))) - 1) * window
    report["tables"].append((
        f"First sync against the rate budget: {customers:,} customers ({pages:,} pages of 100), "
        f"{limit} requests per {window:g} s window at max_api_usage_percent {percent} ({allowed:g} requests/s), "
        f"latency {', '.join(f'{x:g}' for x in args.firstsync_latencies)} s, reset headers "
        f"{' / '.join(args.firstsync_resets)}",
        "How close a first sync comes to the least time its rate budget allows (issue 16). One fake org "
        f"(bench/server.py) with {customers:,} customers; a first sync of the customers list alone (full refresh, a "
        "catalog of `customers` only)" + (", then of every list stream (a first incremental sync, no state)"
        if args.firstsync_streams else "") + f". The fake allows {limit} requests per fixed {window:g} s window "
        "(clock-aligned) and holds each answer `latency` s (requests wait in parallel); the connector runs at "
        f"max_api_usage_percent {percent}, so the allowed rate is {limit} x {percent}% / {window:g} s = "
        f"{allowed:g} requests/s. Each latency runs with each reset-header form ({', '.join(args.firstsync_resets)}; "
        "epoch: the fake's `X-Ratelimit-Reset` on every response, in epoch seconds; none: no such header, as the "
        "recorded live responses). Budget min = the requests the server "
        f"served (429s not counted) / {allowed:g}; the goal is wall <= 1.25 x budget min + 10 s, wall from process "
        "start to exit. In flight: the most API requests the server was serving at once (a connector that reads "
        "one page at a time shows 1). Over min pages: requests (429s included) minus the fewest list pages the "
        "data needs. A run is stopped once it is past the goal for the fewest pages, plus 5 s "
        "(--firstsync-timeout; 0: never): its wall is then a lower bound, and the ratio is projected from the "
        "share of the pages it had fetched (\"~\"). Peak RSS of the connector process. "
        f"Fixed windows let a sync send its share ({share:g}) at each window's start, so the least a sync of n "
        f"requests can take is about (ceil(n / {share:g}) - 1) x {window:g} s, below budget min (a ratio under 1 "
        f"is possible; for {pages:,} pages: {window_bound:g} s). "
        + (f"The {window:g} s window keeps the runs short; Kustomer's is a minute, and `x-ratelimit-limit` never "
           "says which. The connector learns a shorter window from two reset headers in a row; without the header it "
           "keeps to its share of a sliding minute (what Kustomer counts in), which on a short window is a sixth of "
           "the rate the fake allows: run the rows without it at a minute (`--rate-window 60 --firstsync-limit 300`, "
           "Kustomer's smallest plan, so that the budget binds). " if window != 60 else "")
        + f"This table took {took / 60:.1f} min.\n\n" + code_text + "\n" +
        table((["catalog"] if len(sets) > 1 else []) +
              ["latency s", "reset header", "wall s", "budget min s", "wall / budget min", "goal met (goal s)",
               "in flight (max)", "requests", "over min pages", "429s", "records", "peak RSS MB", "result"], rows)))


def firstsync_row(what: str, latency: float, form: str, r: Measured, pages: int, expected: int, allowed: float,
                  show_what: bool) -> list:
    stats = r.server
    sent, refused = stats["api_requests"], stats["fake"]["rate_limited"]
    served = sent - refused
    if r.timed_out:
        done = served / pages if pages else 0  # share of the pages fetched: the pace so far, kept up to the end
        projected = r.wall / done if done else None
        budget = max(served, pages) / allowed
        wall = f"> {r.wall:.1f} (stopped; ~{projected:,.0f} projected)" if projected else f"> {r.wall:.1f} (stopped)"
        ratio_text = f"~{projected / budget:.2f}" if projected else f"> {r.wall / budget:.2f}"
        goal = 1.25 * budget + 10
        goal_text = f"**no** (> {goal:.1f})"
        result = f"stopped after {r.wall:.0f} s, {r.total:,} of {expected:,} records"
    else:
        budget = served / allowed
        goal = 1.25 * budget + 10
        wall, ratio_text = f1(r.wall), f"{r.wall / budget:.2f}" if budget else ""
        goal_text = f"{met(r.wall <= goal)} ({goal:.1f})"
        result = status(r, expected)
        if r.errors:
            result += ": " + "; ".join(r.errors)[:200]
    return ([what] if show_what else []) + [
        f"{latency:g}", form, wall, f1(budget), ratio_text, goal_text, stats.get("in_flight_max", "?"),
        f"{sent:,}", "n/a (stopped)" if r.timed_out else f"{sent - pages:+,}", refused, f"{r.total:,}",
        f1(r.peak_rss_mb), result]


def targets(report: dict) -> str:
    rows = []
    runs = report.get("throughput_runs")
    if runs:
        connector_all, floor1, floor2, pipeline, connector_tap, singer, *incremental = (r for _, r in runs)
        vs_singer = ratio(connector_tap.rate, singer.rate)
        rows.append(["records/s >= 3x the Singer tap's (same 9 streams)",
                     f"{n0(connector_tap.rate)} vs {n0(singer.rate)}: **x{vs_singer:.2f}**" if vs_singer else "n/a",
                     met(vs_singer and vs_singer >= TARGET_VS_SINGER)])
        best_floor = max(floor1.rate, floor2.rate)
        rounds = report.get("floor_ratios", [])
        vs_floor = statistics.median(rounds) if rounds and None not in rounds else None
        rows.append([f"records/s >= 0.5x the raw floor's (faster of 1 and 2 threads; median of {len(rounds)} "
                     "alternating rounds)", f"{n0(connector_all.rate)} vs {n0(best_floor)} in round 1; rounds "
                     f"{', '.join(f'x{r:.2f}' for r in rounds)}: **x{vs_floor:.2f}**" if vs_floor else "n/a",
                     met(vs_floor and vs_floor >= TARGET_VS_FLOOR)])
        if ratio(pipeline.rate, best_floor):
            rows.append(["(not a target) the least a connector of the CDK's shape does, the Python pipeline without "
                         "the CDK, against the same floor: what 0.5 leaves the CDK", f"{n0(pipeline.rate)} vs "
                         f"{n0(best_floor)}: x{ratio(pipeline.rate, best_floor):.2f}; source-kustomer x"
                         f"{ratio(connector_all.rate, pipeline.rate):.2f} of the pipeline", "-"])
        if incremental and ratio(incremental[0].rate, best_floor):
            rows.append(["(not a target) the same, as a first incremental sync, whose cursor parses each record's "
                         "`updatedAt` for the state", f"{n0(incremental[0].rate)} vs {n0(best_floor)}: "
                         f"x{ratio(incremental[0].rate, best_floor):.2f}", "-"])
        extra = report["extra_requests"]
        rows.append(["requests <= 1% over the minimum pages (every stream / the 9 streams)",
                     " / ".join(f"{e:+.2%}" for e in extra), met(max(extra) <= TARGET_EXTRA_REQUESTS)])
    if report.get("rate_worst") is not None:
        worst = report["rate_worst"]
        rows.append(["rate-limited sync within 10% of the budget minimum (worst run where the budget binds, i.e. "
                     "pages / allowed rate exceeds the unthrottled sync time)",
                     f"wall / budget min up to {worst:.2f}", met(worst <= 1 + TARGET_RATE_SLACK)])
    rss = [r.peak_rss_mb for key in ("throughput_runs", "rate_runs", "scale_runs")
           for *_, r in report.get(key, []) if r.label.startswith("source-kustomer") or key != "throughput_runs"]
    if rss:
        rows.append(["peak RSS < 250 MB (every connector run)", f"max {max(rss):.0f} MB", met(max(rss) < TARGET_RSS_MB)])
    if report.get("rss_growth") is not None:
        rows.append(["peak RSS grows < 15% from the small to the large size", f"{report['rss_growth']:+.1%}",
                     met(report["rss_growth"] < TARGET_RSS_GROWTH)])
    return table(["target", "measured (same run)", "met"], rows)


# --- Main ---------------------------------------------------------------------------------------------------------


def find_connector(given: str | None) -> str:
    candidates = [given] if given else [ROOT / ".venv/bin/source-kustomer", "/tmp/venv/bin/source-kustomer",
                                        shutil.which("source-kustomer")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            python = Path(candidate).with_name("python")
            if subprocess.run([str(python), "-c", "import source_kustomer, orjson, requests"],
                              capture_output=True).returncode == 0:
                return str(candidate)
    raise SystemExit(f"no usable source-kustomer among {candidates}; pass --connector")


def machine(python: str) -> list[str]:
    versions = subprocess.run([python, "-c", "import sys, importlib.metadata as m; print(sys.version.split()[0]); "
                                             "print(m.version('airbyte-cdk'))"],
                              capture_output=True, text=True).stdout.split()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    memory = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), None) if Path("/proc/meminfo").exists() else None
    return [f"nproc {os.cpu_count()} ({cpu}), {memory:,} MB RAM, shared with other work" if memory else
            f"nproc {os.cpu_count()}",
            f"{platform.system()} {platform.release()}",
            f"connector: Python {versions[0] if versions else '?'}, airbyte-cdk {versions[1] if len(versions) > 1 else '?'}",
            f"peak RSS from {'/usr/bin/time -v' if GNU_TIME else 'os.wait4 rusage'}"]


def code_lines(report: dict) -> list[str]:
    codes = report.get("codes") or []
    distinct = list(dict.fromkeys(code.split()[0] for _, code in codes))
    if len(distinct) <= 1:
        return [f"- connector code (hash of its package files, git state): {codes[0][1] if codes else 'n/a'}"]
    return ["- **the connector's code changed during this benchmark** (others work in the same tree): compare only "
            "runs with the same code;", *[f"  - {run}: {code}" for run, code in codes]]


def write_results(report: dict, command: str, facts: list[str], started: float, results: Path = RESULTS) -> str:
    lines = ["# source-kustomer benchmark", "",
             "Generated by `bench/run.py`; everything above the \"What we tried\" heading is rewritten by each run.",
             "Ratios compare runs made side by side in the same run on a shared 2-core machine; the absolute numbers "
             "are not claims about speed anywhere else.", "",
             f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} (the whole run took "
             f"{(time.perf_counter() - started) / 60:.1f} min)",
             f"- command: `{command}`", *[f"- {fact}" for fact in facts], *code_lines(report),
             f"- load average (1 min) at the start {report['load'][0]:.1f}, at the end {os.getloadavg()[0]:.1f}: "
             "other work shares this machine, so repeat a run before trusting a small difference", "",
             "## Targets", "", targets(report), ""]
    for title, body in report["tables"]:
        lines += [f"## {title}", "", body, ""]
    if report.get("profile"):
        result, summary = report["profile"]
        span = (f"its first {result.wall:.0f} s (stopped there)" if result.timed_out
                else f"the whole sync ({result.wall:.1f} s)")
        lines += ["## Profile of a full sync (py-spy, every stream)", "",
                  f"Sampled over {span}, {result.total:,} records; raw stacks in bench/out/profile.raw.txt.", "",
                  "```", *summary, "```", ""]
    lines += ["## How it was measured", "",
              "- Every client reads from the same fake (`bench/server.py`, its own process, orjson serialisation) "
              "on 127.0.0.1; requests and bytes are counted by the server (response bodies).",
              "- Wall time runs from process start to exit (startup and discovery included); records/s = records / "
              "wall. \"1st record s\" is the startup part.",
              "- CPU/wall is the client's CPU time over its wall time (above 100%: more than one core). The connector "
              "is CPU-bound here, so well under ~95% means it waited: on the fake server or for a core that other "
              "work on the machine had.",
              "- The raw floor is bounded by the fake server (Python's http.server) more than by its own client (see "
              "its CPU/wall), so the real floor is faster still: the connector/floor ratio flatters the connector.",
              "- \"No limit\" runs use a rate limit of 10^9: the fake always sends x-ratelimit-* headers (1,000 a "
              "minute when none is set), and the connector obeys them.",
              "- The Singer tap runs unthrottled and on the fake through bench/singer_shim.py; its streams are "
              "ordered smallest first. It searches (which sees only records updated in the last two years), so it "
              "reads fewer records than a full list; compare records/s, not totals.",
              "- Budget minimum = pages needed / (limit x usage share / window), as a steady rate. The fake's "
              "windows are fixed (a window opens at the first request after the last one closed), so a sync may "
              "burst its share at each window's start: the window-bound minimum, (ceil(pages / share per window) - 1) "
              "x window, is the least time that allows. The reset header is rounded up to the second, which can cost "
              "up to a second per window. The rate-limit target compares the wall time with the larger of the budget "
              "minimum and the unthrottled sync of the same data.", ""]
    generated = "\n".join(lines)
    tried = f"{TRIED_HEADING}\n\n"
    if results.exists():
        text = results.read_text()
        if TRIED_HEADING in text:
            tried = text[text.index(TRIED_HEADING):]
    results.write_text(generated + "\n" + tried)
    return generated


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int)
    parser.add_argument("--conversations", type=int)
    parser.add_argument("--messages", type=int)
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere (~a tenth), to check it works")
    parser.add_argument("--scenarios", default="throughput,ratelimit,scaling,headers,idle")
    parser.add_argument("--profile", action="store_true", help="also profile a full sync with py-spy")
    parser.add_argument("--profile-seconds", type=float, default=90.0,
                        help="stop the profiled sync after this long (0: let it finish)")
    parser.add_argument("--rounds", type=int, help="alternating rounds of source-kustomer and the raw floors "
                        "(default 3; 1 with --quick)")
    parser.add_argument("--singer-timeout", type=float, help="seconds (default 120; 30 with --quick)")
    parser.add_argument("--rl-customers", type=int, help="customers of the rate-limited org (default 20,000)")
    parser.add_argument("--rate-limits", default="600,100", help="requests per window to try (comma-separated)")
    parser.add_argument("--rate-window", type=float, default=10.0, help="seconds")
    parser.add_argument("--search-rate-limit", type=int, default=17, help="searches per window (100/min scaled)")
    parser.add_argument("--scale-customers", help="two sizes, comma-separated (default 10000,200000)")
    parser.add_argument("--header-limit", type=int, default=60, help="requests a minute for the header runs")
    parser.add_argument("--header-customers", type=int, help="customers of the header runs' org (default 3,000)")
    parser.add_argument("--connector", help="the source-kustomer executable (default: .venv, else /tmp/venv)")
    parser.add_argument("--baseline-connector", help="tricks: the source-kustomer executable to compare against")
    parser.add_argument("--tricks-latencies", default="0,0.3,1", help="tricks: seconds per answer (comma-separated)")
    parser.add_argument("--tricks-limit", type=int, default=300, help="tricks: requests a minute above latency 0")
    parser.add_argument("--tricks-sizes", help="tricks: JSON object of Dataset sizes (default 3,000 customers, "
                        "conversations and messages; a tenth with --quick)")
    parser.add_argument("--tricks-incremental", action="store_true", help="tricks: first incremental syncs "
                        "(no state) instead of full refresh")
    parser.add_argument("--tricks-rounds", type=int, help="tricks: alternating rounds (default 3; 1 with --quick)")
    parser.add_argument("--firstsync-customers", type=int, help="firstsync: customers (default 30,000; 3,000 with "
                        "--quick)")
    parser.add_argument("--firstsync-limit", type=int, default=160, help="firstsync: requests per --rate-window")
    parser.add_argument("--firstsync-percent", type=int, default=50, help="firstsync: max_api_usage_percent")
    parser.add_argument("--firstsync-latencies", default="0,0.3,1", help="firstsync: seconds per answer "
                        "(comma-separated)")
    parser.add_argument("--firstsync-resets", default="epoch,none", help="firstsync: X-Ratelimit-Reset forms of the "
                        "fake (comma-separated: epoch, delta, on_429, none)")
    parser.add_argument("--firstsync-timeout", type=float, help="firstsync: seconds before a run is stopped "
                        "(default: its goal for the fewest pages + 5 s; 0: never)")
    parser.add_argument("--firstsync-streams", action="store_true", help="firstsync: also every list stream, "
                        "first incremental sync")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results file to write (default "
                        "bench/results.md; elsewhere to keep its tables)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.customers = args.customers or (5_000 if quick else 50_000)
    args.conversations = args.conversations or (10_000 if quick else 100_000)
    args.messages = args.messages or (30_000 if quick else 300_000)
    args.singer_timeout = args.singer_timeout or (30.0 if quick else 120.0)
    args.rounds = max(1, args.rounds or (1 if quick else 3))
    args.rl_customers = args.rl_customers or (2_000 if quick else 20_000)
    args.rate_limits = [int(x) for x in args.rate_limits.split(",") if x]
    args.header_customers = args.header_customers or (1_000 if quick else 3_000)
    args.scale_customers = [int(x) for x in (args.scale_customers or ("2000,40000" if quick else "10000,200000"))
                            .split(",")]
    args.tricks_latencies = [float(x) for x in args.tricks_latencies.split(",") if x]
    args.tricks_sizes = json.loads(args.tricks_sizes) if args.tricks_sizes else {
        name: 300 if quick else 3_000 for name in ("customers", "conversations", "messages")}
    args.tricks_rounds = max(1, args.tricks_rounds or (1 if quick else 3))
    args.firstsync_customers = args.firstsync_customers or (3_000 if quick else 30_000)
    args.firstsync_latencies = [float(x) for x in args.firstsync_latencies.split(",") if x]
    args.firstsync_resets = [x for x in args.firstsync_resets.split(",") if x]
    scenarios = set(args.scenarios.split(","))
    if "tricks" in scenarios and not args.baseline_connector:
        parser.error("the tricks scenario needs --baseline-connector")

    OUT.mkdir(exist_ok=True)
    executable = find_connector(args.connector)
    python = str(Path(executable).with_name("python"))
    connector = Connector(executable)
    command = shlex.join(["python", "bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    facts = machine(python) + [f"connector executable: {executable}"]
    log(f"{command}\n  " + "\n  ".join(facts))
    started = time.perf_counter()
    report: dict = {"tables": [], "load": os.getloadavg()}
    try:
        for name, scenario in (("throughput", throughput), ("ratelimit", ratelimit), ("scaling", scaling),
                               ("headers", headers), ("idle", idle), ("tricks", tricks), ("firstsync", firstsync)):
            if name not in scenarios:
                continue
            try:
                scenario(args, python, connector, report)
            except Exception:  # one broken scenario still leaves the others' tables
                log(f"{name} failed:\n{traceback.format_exc()}")
                report["tables"].append((f"{name}: failed", f"```\n{traceback.format_exc()[-3000:]}```"))
    finally:
        for pgid in list(_children):
            _signal_group(pgid, signal.SIGKILL)
    report["codes"] = connector.codes
    print(write_results(report, command, facts, started, args.results))
    log(f"wrote {args.results} in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
