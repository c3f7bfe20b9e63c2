"""Runs the installed `source-kustomer` command the way Airbyte does and parses what it prints."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

# The console script installed next to this interpreter (the project's virtualenv), else the one on PATH.
EXECUTABLE = str(Path(sys.executable).with_name("source-kustomer")) if Path(sys.executable).with_name(
    "source-kustomer"
).exists() else (shutil.which("source-kustomer") or "source-kustomer")


class Run:
    def __init__(self, process: subprocess.CompletedProcess):
        self.returncode = process.returncode
        self.stderr = process.stderr
        self.stdout = process.stdout
        self.messages = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]

    def of_type(self, kind: str) -> list[dict]:
        key = "connectionStatus" if kind == "CONNECTION_STATUS" else kind.lower()
        return [m[key] for m in self.messages if m["type"] == kind]

    def records(self, stream: str | None = None) -> list[dict]:
        return [r["data"] for r in self.of_type("RECORD") if stream is None or r["stream"] == stream]

    def records_by_stream(self) -> dict[str, list[dict]]:
        result: dict[str, list[dict]] = {}
        for record in self.of_type("RECORD"):
            result.setdefault(record["stream"], []).append(record["data"])
        return result


def run(command: str, config: dict | None = None, catalog: dict | None = None, state: Any = None, timeout: int = 300) -> Run:
    """`source-kustomer <command> --config ... [--catalog ...] [--state ...]` with the given objects as files."""
    with tempfile.TemporaryDirectory() as folder:
        args = [EXECUTABLE, command]
        for flag, value in (("config", config), ("catalog", catalog), ("state", state)):
            if value is not None:
                path = Path(folder, f"{flag}.json")
                path.write_text(json.dumps(value))
                args += [f"--{flag}", str(path)]
        return Run(subprocess.run(args, capture_output=True, text=True, timeout=timeout))


def configured_catalog(catalog: dict, streams: Iterable[str] | None = None) -> dict:
    """Selects every stream of a discovered catalog (or the named ones) for a full-refresh read."""
    wanted = set(streams) if streams is not None else None
    return {
        "streams": [
            {
                "stream": stream,
                "sync_mode": "full_refresh",
                "destination_sync_mode": "overwrite",
                "primary_key": stream.get("source_defined_primary_key"),
            }
            for stream in catalog["streams"]
            if wanted is None or stream["name"] in wanted
        ]
    }
