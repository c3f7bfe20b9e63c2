"""Running one client process and measuring it: wall time, CPU time, peak RSS, and its output counted as it streams.

`measure` runs a command in its own process group and returns a `Measured`; `end_children` ends whatever is still
running when the benchmark stops. The server's counts (requests, bytes) are added by the callers (bench/harness.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import OUT

GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None

_children: set[int] = set()  # process groups to end if the benchmark itself is interrupted


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


def end_children() -> None:
    """SIGKILL to the process group of every client still running (the benchmark was interrupted or failed)."""
    for pgid in list(_children):
        _signal_group(pgid, signal.SIGKILL)
