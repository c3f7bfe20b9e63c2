"""PyAirbyte (`airbyte` on PyPI) reads the installed `source-kustomer` command into its default DuckDB cache, then
reads again incrementally with the state it kept in that cache.

PyAirbyte is large (~780 MB) and pins its own dependencies, so it lives in a virtualenv of its own: made on first use
in the user's cache, `~/.cache/source-kustomer/pyairbyte-venv/` (XDG_CACHE_HOME; PYAIRBYTE_VENV moves it), from
`pyairbyte_requirements.txt`, rebuilt when that file changes, reused otherwise: by every checkout on the machine. pip, at that setup, is the only network access. The reads run a small driver script
in that virtualenv, offline (AIRBYTE_OFFLINE_MODE, DO_NOT_TRACK, a dead proxy for anything but 127.0.0.1), against a
fake Kustomer API of the test's own, with every PyAirbyte file (cache, logs, temp) under pytest's tmp_path.

    pytest -m pyairbyte            # only this; `-m "not pyairbyte"` leaves it out
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from integration_tests import cli
from integration_tests.expected import expected_ids, klass_stream
from integration_tests.fake_kustomer import API_KEY, DEFAULT_SIZES, Dataset, FakeKustomer, Faults

pytestmark = [pytest.mark.pyairbyte, pytest.mark.once]

REQUIREMENTS = Path(__file__).with_name("pyairbyte_requirements.txt")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
VENV = Path(os.environ.get("PYAIRBYTE_VENV") or CACHE / "source-kustomer" / "pyairbyte-venv")
PYTHONS = ((3, 10), (3, 13))  # airbyte 0.71.3: Requires-Python >=3.10,<3.13
PIN = " ".join(line for line in REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#"))
# The connector installed next to this interpreter (else the one on PATH), as the other integration tests run it.
EXECUTABLE = shutil.which(cli.EXECUTABLE)
KLASSES = [key.removeprefix("kobject.") for key in DEFAULT_SIZES if key.startswith("kobject.")]
ALL_STREAMS = {
    "customers", "conversations", "messages", "notes", "users", "teams", "tags", "brands", "shortcuts", "companies",
    "klasses", "kobjects", "queues", "satisfaction_surveys", "satisfaction_responses", "conversation_times",
    "audit_logs", "deletions", "conversation_events", "conversation_forwards", "business_schedules",
    "work_sessions", "work_items", "routing_statuses", "slas", "sla_versions", "business_schedule_holidays",
    "custom_attribute_metadata", "kb_articles", "kb_categories", "snoozes", "message_attachments",
    *map(klass_stream, KLASSES),
}
INCREMENTAL = ["customers", "conversations"]  # streams the second read checks record by record

# Runs inside the PyAirbyte virtualenv, one process for every read of a test (importing PyAirbyte takes 4-8 s): for
# each job line on stdin, a read into the default DuckDB cache, then what the cache holds, written to the job's answer
# file (PyAirbyte prints to stdout), then ANSWERED (argv[2]) on a line of its own on stdout.
ANSWERED = "@@pyairbyte-test: answered"
DRIVER = r'''
import json, sys, time
import airbyte as ab
import sqlalchemy as sa

setup = json.loads(sys.argv[1])
source = ab.get_source("source-kustomer", config=setup["config"], local_executable=setup["executable"])
cache = ab.get_default_cache()


def stamp(value):
    if hasattr(value, "strftime"):  # DuckDB TIMESTAMP: naive UTC
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value


for line in sys.stdin:
    job, started = json.loads(line), time.monotonic()
    if job["streams"] == "*":
        source.select_all_streams()
    else:
        source.select_streams(job["streams"])
    with cache.get_sql_engine().connect() as db:  # what earlier reads extracted: newer rows come from this one
        before = {s: db.execute(sa.select(sa.func.max(cache[s].to_sql_table().c._airbyte_extracted_at))).scalar()
                  for s in source.get_selected_streams() if s in cache}
    result = source.read(cache)  # incremental where the stream supports it, from the state kept in the cache
    tables = {}
    with cache.get_sql_engine().connect() as db:
        for s in result:
            table = cache[s].to_sql_table()
            columns = [table.c[name] if name in table.c else sa.null() for name in ("id", "updatedat", "rev")]
            rows = db.execute(sa.select(*columns, table.c._airbyte_extracted_at))
            tables[s] = [[id_, stamp(updated), rev, s not in before or extracted > before[s]]
                         for id_, updated, rev, extracted in rows]
    states = json.loads(cache.get_state_provider(source.name).to_state_input_file_text())
    with open(job["answer"], "w") as answer:
        json.dump({"tables": tables, "processed_records": result.processed_records,
                   "state": {m["stream"]["stream_descriptor"]["name"]: m["stream"]["stream_state"] for m in states},
                   "seconds": round(time.monotonic() - started, 1)}, answer)
    print("\n" + sys.argv[2], flush=True)
'''


# --- The PyAirbyte virtualenv ---------------------------------------------------------------------------------------

def _python_version(python: str) -> tuple[int, int] | None:
    if python == sys.executable:
        return sys.version_info[:2]
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=30).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _base_python() -> str | None:
    """An interpreter PyAirbyte supports: PYAIRBYTE_PYTHON, this one, else python3.12/3.11/3.10 from PATH."""
    candidates = [os.environ.get("PYAIRBYTE_PYTHON"), sys.executable,
                  *(shutil.which(f"python3.{minor}") for minor in (12, 11, 10))]
    for python in filter(None, candidates):
        if (version := _python_version(python)) and PYTHONS[0] <= version < PYTHONS[1]:
            return python
    return None


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _index_url(python: Path) -> str:
    if url := os.environ.get("PIP_INDEX_URL"):
        return url
    got = subprocess.run([str(python), "-m", "pip", "config", "get", "global.index-url"], capture_output=True,
                         text=True, timeout=60)
    return got.stdout.strip() if got.returncode == 0 and got.stdout.strip() else "https://pypi.org/simple"


def _unreachable(index: str) -> str | None:
    """Why pip cannot reach the package index at all (no network, DNS, proxy); None when the index answers, even with
    an HTTP or TLS error: then pip's failure is a real one."""
    if not index.startswith(("http://", "https://")):
        return None
    try:
        urllib.request.urlopen(f"{index.rstrip('/')}/airbyte/", timeout=20).close()
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as error:
        return None if isinstance(error.reason, ssl.SSLError) else f"{index}: {error.reason}"
    except OSError as error:  # timeouts too
        return f"{index}: {error}"
    return None


def _remove_venv() -> None:
    """Removes VENV, a half-made or outdated virtualenv; refuses a folder that is neither empty nor a virtualenv."""
    if VENV.exists() and any(VENV.iterdir()) and not (VENV / "pyvenv.cfg").exists():
        pytest.fail(f"{VENV} exists and is not a virtualenv: move it away or set PYAIRBYTE_VENV", pytrace=False)
    shutil.rmtree(VENV, ignore_errors=True)


def _installed(wanted: str) -> bool:
    """The virtualenv is complete (its stamp, written last, holds the requirements it was built from) and works."""
    stamp = VENV / "pyairbyte_requirements.txt"
    if not _venv_python().exists() or not stamp.exists() or stamp.read_text() != wanted:
        return False
    check = subprocess.run([str(_venv_python()), "-c", "import importlib.metadata as m; m.version('airbyte')"],
                           capture_output=True, timeout=60)
    return check.returncode == 0


@contextmanager
def _locked():
    """One pytest run at a time builds the virtualenv (a lock file in the temp dir, not in the repository)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    digest = hashlib.sha1(str(VENV).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir(), f"pyairbyte-venv-{digest}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def pyairbyte_python() -> Path:
    """The PyAirbyte virtualenv's interpreter; the virtualenv is made (pip, from PyPI) when missing or outdated."""
    wanted = REQUIREMENTS.read_text()
    with _locked():
        if _installed(wanted):
            return _venv_python()
        started = time.monotonic()
        base = _base_python()
        if base is None:
            pytest.fail(f"PyAirbyte ({REQUIREMENTS.name}) needs Python {'.'.join(map(str, PYTHONS[0]))} to "
                        f"<{'.'.join(map(str, PYTHONS[1]))}; this is {sys.version.split()[0]} and PATH has no "
                        "python3.12/3.11/3.10 (or set PYAIRBYTE_PYTHON)", pytrace=False)
        _remove_venv()
        made = subprocess.run([base, "-m", "venv", str(VENV)], capture_output=True, text=True, timeout=600)
        if made.returncode:
            pytest.fail(f"could not create {VENV} with {base}:\n{made.stdout}{made.stderr}", pytrace=False)
        if reason := _unreachable(_index_url(_venv_python())):
            _remove_venv()
            print(f"PyAirbyte test skipped: the package index is unreachable ({reason})")
            pytest.skip(f"offline: cannot install PyAirbyte into {VENV.name}, package index unreachable ({reason})")
        install = subprocess.run([str(_venv_python()), "-m", "pip", "install", "--disable-pip-version-check",
                                  "-r", str(REQUIREMENTS)], capture_output=True, text=True, timeout=1800)
        if install.returncode:
            reason = _unreachable(_index_url(_venv_python()))  # the network may have gone away during the install
            _remove_venv()
            if reason:
                print(f"PyAirbyte test skipped: the package index became unreachable ({reason})")
                pytest.skip(f"offline: PyAirbyte install interrupted, package index unreachable ({reason})")
            errors = [line for line in install.stderr.splitlines() if line.startswith("ERROR")]
            pytest.fail(f"pip could not install PyAirbyte ({PIN}, from {REQUIREMENTS.name}) into {VENV} with "
                        f"{base}:\n" + "\n".join(errors or install.stderr.splitlines()[-30:]), pytrace=False)
        (VENV / "pyairbyte_requirements.txt").write_text(wanted)  # last: marks the virtualenv complete
        print(f"PyAirbyte virtualenv {VENV} made in {time.monotonic() - started:.0f} s")
        return _venv_python()


# --- Reads ----------------------------------------------------------------------------------------------------------

@pytest.fixture
def fake():
    """Replaces conftest's autouse session server on port 48585 for this module: the test starts a fake of its own, and
    runs even while another pytest run holds that port."""
    return None


def cursor(state: dict) -> str:
    """A stream state's updatedAt to the millisecond (the connector writes microseconds: ...343000Z)."""
    return state.get("state", state)["updatedAt"][:23]


def ago(**delta) -> str:
    moment = datetime.now(timezone.utc) - timedelta(**delta)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class PyAirbyte:
    """The driver in the PyAirbyte virtualenv, started on entry; every read shares one default cache under `home`."""

    def __init__(self, python: Path, home: Path, config: dict):
        self.python, self.home, self.config = python, home, config
        self.env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")} | {
            "AIRBYTE_OFFLINE_MODE": "1", "DO_NOT_TRACK": "1",
            **{f"AIRBYTE_{name.upper()}": str(home / name) for name in ("cache_root", "project_dir", "logging_root",
                                                                       "temp_dir", "install_dir")},
            # Offline means offline: anything but the local fake goes to a proxy nothing listens on.
            **{key: "http://127.0.0.1:9" for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        }
        self.reads, self.output = 0, []

    def __enter__(self) -> "PyAirbyte":
        for name in ("cache_root", "project_dir", "logging_root", "temp_dir", "install_dir"):
            (self.home / name).mkdir(parents=True, exist_ok=True)
        (self.home / "driver.py").write_text(DRIVER)
        self.stderr = open(self.home / "driver.stderr", "w+")
        setup = json.dumps({"config": self.config, "executable": EXECUTABLE})
        self.process = subprocess.Popen([str(self.python), str(self.home / "driver.py"), setup, ANSWERED],
                                        env=self.env, cwd=self.home / "project_dir", stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.process.stdin.close()  # the driver's end of input: it exits
        except BrokenPipeError:
            pass
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()

    def read(self, streams: list[str] | str, timeout: float = 600) -> dict:
        """One read (streams: names or "*"); the driver's answer: per table [id, updatedAt, rev, read now] rows,
        the state kept in the cache, processed_records."""
        self.reads += 1
        answer, started = self.home / f"answer{self.reads}.json", time.monotonic()
        timed_out = threading.Event()
        watchdog = threading.Timer(timeout, lambda: (timed_out.set(), self.process.kill()))  # fail rather than hang
        watchdog.start()
        try:
            self.process.stdin.write(json.dumps({"streams": streams, "answer": str(answer)}) + "\n")
            self.process.stdin.flush()
            for line in self.process.stdout:
                if line.rstrip("\n") == ANSWERED:
                    break
                self.output = (self.output + [line])[-200:]
        except BrokenPipeError:
            pass
        finally:
            watchdog.cancel()
        if not answer.exists():
            self.fail(f"PyAirbyte read #{self.reads} of {streams} " + (f"timed out after {timeout:.0f} s"
                                                                        if timed_out.is_set() else "failed"))
        result = json.loads(answer.read_text())
        print(f"PyAirbyte read #{self.reads} of {streams}: {time.monotonic() - started:.1f} s "
              f"({result['seconds']} s of it reading)")
        return result

    def fail(self, what: str) -> None:
        self.process.kill()
        self.stderr.seek(0)
        logs = "".join(f"\n--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}"
                       for log in sorted((self.home / "logging_root").rglob("*.log")))
        pytest.fail(f"{what} (exit code {self.process.wait()}):\n{''.join(self.output)[-3000:]}\n"
                    f"{self.stderr.read()[-4000:]}{logs}", pytrace=False)


def test_pyairbyte_reads_everything_then_only_what_changed(pyairbyte_python, tmp_path):
    assert EXECUTABLE, f"no source-kustomer next to {sys.executable} or on PATH: pip install -e . first"
    # The first read, of everything, makes about 1,000 requests (a request per conversation for its times, events and
    # forwards): a limit it never reaches keeps it from waiting out the budget.
    with FakeKustomer(Dataset({"users": 60, "messages": 200, "tags": 40, "shortcuts": 40}),
                      faults=Faults(rate_limit=10**6)) as server, \
            PyAirbyte(pyairbyte_python, tmp_path, {"organization": "acme", "api_key": API_KEY,
                                                   "base_url": server.url}) as pyairbyte:
        dataset = server.dataset
        first = pyairbyte.read("*")
        tables = first["tables"]
        assert {s for s, rows in tables.items() if rows} == {s for s in ALL_STREAMS if expected_ids(dataset, s)}
        for stream, rows in tables.items():
            assert sorted(row[0] for row in rows) == sorted(expected_ids(dataset, stream)), stream

        # A sync reads up to a minute before it started, and the next one from there: changes stamped a minute ago,
        # after the first read started, are the second read's.
        rng, changed = random.Random(5), {}
        for stream in INCREMENTAL:
            touched = dataset.touch(stream, [r["id"] for r in rng.sample(dataset.all(stream), 6)], at=ago(seconds=60.5))
            created = dataset.create(stream, 3, at=ago(seconds=60.4))
            changed[stream] = {r["id"] for r in touched + created}

        second = pyairbyte.read(INCREMENTAL)
        assert set(second["tables"]) == set(INCREMENTAL)
        for stream in INCREMENTAL:
            rows = {row[0]: row for row in second["tables"][stream]}
            assert len(rows) == len(second["tables"][stream]) == len(dataset.all(stream)), stream  # merged on id
            new = {id_ for id_, *_, read_now in rows.values() if read_now}
            # Read again: what changed, and at most the records sharing the first read's state (ties at the state).
            ties = {r["id"] for r in dataset.all(stream)
                    if r["attributes"]["updatedAt"][:23] == cursor(first["state"][stream])}
            assert changed[stream] <= new, f"{stream}: changes not read: {sorted(changed[stream] - new)}"
            assert new <= changed[stream] | ties, f"{stream}: {len(new - changed[stream] - ties)} unchanged read again"
            # The cache holds the server's current values: the new updatedAt and rev of changed records.
            assert {id_: (updated, rev) for id_, updated, rev, _ in rows.values()} == {
                r["id"]: (r["attributes"]["updatedAt"], r["attributes"].get("rev")) for r in dataset.all(stream)}
            newest = max(r["attributes"]["updatedAt"] for r in dataset.all(stream))
            assert cursor(second["state"][stream]) >= newest[:23], f"{stream}: the state did not move past {newest}"
        new_rows = sum(read_now for stream in INCREMENTAL for *_, read_now in second["tables"][stream])
        assert second["processed_records"] == new_rows  # each record came once
