"""Runs the installed `source-kustomer` command the way Airbyte does and parses what it prints."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable


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

    def final_states(self) -> list[dict]:
        """The last STATE message of each stream: what a platform passes to the next sync."""
        return list({m["stream"]["stream_descriptor"]["name"]: m for m in self.of_type("STATE")}.values())

    def warnings(self) -> list[str]:
        return [m["message"] for m in self.of_type("LOG") if m["level"] == "WARN"]

    def errors(self) -> list[str]:
        return [t["error"]["message"] for t in self.of_type("TRACE") if t["type"] == "ERROR"]

    def records_by_stream(self) -> dict[str, list[dict]]:
        result: dict[str, list[dict]] = {}
        for record in self.of_type("RECORD"):
            result.setdefault(record["stream"], []).append(record["data"])
        return result


def run(command: str, config: dict | None = None, catalog: dict | None = None, state: Any = None, timeout: int = 300,
        check_conformance: bool = True, executable: str = EXECUTABLE) -> Run:
    """`source-kustomer <command> --config ... [--catalog ...] [--state ...]` with the given objects as files.

    A `read` with a catalog fails the test if its output breaks the Airbyte rules `conformance.py` checks, unless
    `check_conformance=False` (only for a test that means to produce broken output)."""
    with tempfile.TemporaryDirectory() as folder:
        args = [executable, command]
        for flag, value in (("config", config), ("catalog", catalog), ("state", state)):
            if value is not None:
                path = Path(folder, f"{flag}.json")
                path.write_text(json.dumps(value))
                args += [f"--{flag}", str(path)]
        process = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if command == "read" and catalog is not None and check_conformance:
        from integration_tests.conformance import assert_conforms  # jsonschema: not for bench/, which uses this file

        assert_conforms(process.stdout.splitlines(), catalog)
    return Run(process)


def stamps(state: Any) -> list[str]:
    """Every timestamp in a stream's state, however nested (substreams keep their parent's too)."""
    if isinstance(state, dict):
        return [stamp for value in state.values() for stamp in stamps(value)]
    return [state] if isinstance(state, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", state) else []


def configured_catalog(catalog: dict, streams: Iterable[str] | None = None, incremental: bool = False) -> dict:
    """Selects every stream of a discovered catalog (or the named ones), full refresh or incremental + dedup (a
    stream that offers only full refresh, such as slas, in full refresh)."""
    wanted = set(streams) if streams is not None else None

    def configured(stream: dict) -> dict:
        mode = incremental and "incremental" in stream["supported_sync_modes"]
        return {"stream": stream, "sync_mode": "incremental" if mode else "full_refresh",
                "destination_sync_mode": "append_dedup" if mode else "overwrite",
                "primary_key": stream.get("source_defined_primary_key"),
                **({"cursor_field": stream["default_cursor_field"]} if mode else {})}

    return {"streams": [configured(stream) for stream in catalog["streams"] if wanted is None or stream["name"] in wanted]}


def read_until_state(config: dict, catalog: dict, until: Callable[[dict], bool], timeout: int = 300,
                     check_conformance: bool = True) -> Run:
    """A `read` killed once it has printed a STATE message for which `until(state)` holds: an interrupted sync.

    Its output is checked like `run`'s, with only the rules that hold for a prefix of a read."""
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder, "config.json"), Path(folder, "catalog.json")]
        for path, value in zip(paths, (config, catalog)):
            path.write_text(json.dumps(value))
        args = [EXECUTABLE, "read", "--config", str(paths[0]), "--catalog", str(paths[1])]
        lines = []
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
            for line in process.stdout:
                lines.append(line)
                if line.startswith('{"type":"STATE"') and until(json.loads(line)["state"]):
                    process.kill()
                    break
            process.wait(timeout)
    if check_conformance:
        from integration_tests.conformance import assert_conforms

        assert_conforms(lines, catalog, complete=False)
    return Run(subprocess.CompletedProcess(args, process.returncode, "".join(lines), ""))
