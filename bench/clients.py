"""The clients beside the connector, each against the same fake server: the Singer tap and the raw floors.

    singer_read(server, timeout)     tap-kustomer 1.1.0 (its own venv, bench/.venv-singer, created from PyPI on first
                                     use) through bench/singer_shim.py: pointed at the fake, self-throttle off
    floor_read(python, server, ...)  bench/floor.py: requests + orjson on the same list pages, 1 or 2 threads; with
                                     as_records, the Python pipeline without the CDK
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.common import BENCH, OUT, ROOT, log
from bench.harness import Server
from bench.measure import Measured, measure
from integration_tests.fake_kustomer import API_KEY

SINGER_VENV = BENCH / ".venv-singer"
SINGER_PACKAGE = "tap-kustomer==1.1.0"
SINGER_STREAMS = ["customers", "conversations", "messages", "notes", "kobjects", "users", "teams", "tags", "shortcuts"]


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

