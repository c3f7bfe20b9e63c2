"""Checks one `read`'s output against the configured catalog it ran with.

Each check names the rule it implements as a § of ../shared/reference/airbyte-protocol-rules.md, beside the
repository (§7 lists them).
`violations(...)` returns one line per kind of violation (rule, stream, detail) with a first example and a count;
`assert_conforms(...)` fails with all of them. `complete=False` is for a read that was killed: only the rules that hold
for a prefix of the output apply.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from dateutil import parser as dateutil_parser
from jsonschema import Draft7Validator, FormatChecker, validators

READ_TYPES = {"RECORD", "STATE", "LOG", "TRACE", "CONTROL"}  # §0: what the platform accepts during read
DROPPED_TYPES = {"SPEC", "CATALOG", "CONNECTION_STATUS"}  # §0: valid messages, but dropped during read
TERMINAL = {"COMPLETE", "INCOMPLETE"}
# §3.3: CAT's CustomFormatChecker for format date-time
CAT_DATE_TIME = re.compile(r"^\d{4}-\d?\d-\d?\d(\s|T)\d?\d:\d?\d:\d?\d(.\d+)?.*$")
MISSING = object()


def _strict_integer(checker, instance) -> bool:  # §3.3: CAT's Draft7ValidatorWithStrictInteger (1.0, True are not)
    return isinstance(instance, int) and not isinstance(instance, bool)


StrictDraft7 = validators.extend(
    Draft7Validator, type_checker=Draft7Validator.TYPE_CHECKER.redefine("integer", _strict_integer)
)
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=(ValueError, OverflowError))
def _cat_date_time(value: Any) -> bool:  # §3.3: the regex, and it must parse (pendulum strict=False ~ dateutil)
    if not isinstance(value, str):
        return True
    return bool(CAT_DATE_TIME.match(value)) and dateutil_parser.parse(value) is not None


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _descriptor_key(descriptor: Any) -> tuple[str | None, str | None] | None:
    # State and status descriptors: a null namespace and "" are equal (§2, StreamStatusCompletionTracker)
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("name"), str):
        return None
    return descriptor["name"], descriptor.get("namespace") or None


def _navigate(data: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return MISSING
        data = data[part]
    return data


class _Found:
    """Violations grouped by (rule, stream, detail): the first example and how many times."""

    def __init__(self):
        self.groups: dict[tuple, list] = {}

    def add(self, rule: str, stream: Any, detail: str, example: str) -> None:
        group = self.groups.setdefault((rule, stream, detail), [example, 0])
        group[1] += 1

    def lines(self) -> list[str]:
        ordered = sorted(self.groups.items(), key=lambda item: (item[0][0], str(item[0][1])))  # by rule, stream
        return [f"[{rule}] {example}" + (f" ({count} times)" if count > 1 else "")
                for (rule, _, _), (example, count) in ordered]


def _parse(messages: Iterable[str | dict], found: _Found) -> list[dict]:
    """§0, §7.1: every stdout line is one JSON AirbyteMessage with a type valid during read."""
    parsed = []
    for number, message in enumerate(messages, 1):
        if isinstance(message, str):
            if not message.strip():
                continue
            try:
                message = json.loads(message)
            except ValueError:
                found.add("§0 parse", None, "json", f"stdout line {number} is not JSON: {_short(message)}")
                continue
        if not isinstance(message, dict) or message.get("type") not in READ_TYPES | DROPPED_TYPES:
            found.add("§0 type", None, "type", f"stdout line {number} has no valid message type: {_short(message)}")
            continue
        if message["type"] in DROPPED_TYPES:
            found.add("§0 type", None, message["type"], f"stdout line {number} is a {message['type']}, dropped during read")
            continue
        parsed.append(message)
    return parsed


def violations(messages: Iterable[str | dict], configured_catalog: dict, complete: bool = True) -> list[str]:
    """The rules one read's output breaks. `messages`: stdout lines (str) or parsed message dicts, in order."""
    found = _Found()
    configured = {(c["stream"]["name"], c["stream"].get("namespace")): c for c in configured_catalog.get("streams", [])}
    by_descriptor = {(name, namespace or None): (name, namespace) for name, namespace in configured}
    checkers = {key: StrictDraft7(c["stream"].get("json_schema") or {}, format_checker=FORMATS)
                for key, c in configured.items()}
    parsed = _parse(messages, found)

    # §2, §0: ERROR traces, attributed to a stream by their stream_descriptor or by naming it
    errored: set = set()
    run_has_errors = False
    for message in parsed:
        trace = message.get("trace") or {}
        if message["type"] == "TRACE" and trace.get("type") == "ERROR":
            run_has_errors = True
            error = trace.get("error") or {}
            named = _descriptor_key(error.get("stream_descriptor"))
            text = f"{error.get('message', '')} {error.get('internal_message', '')}"
            for descriptor, key in by_descriptor.items():
                if named == descriptor or re.search(rf"(?<!\w){re.escape(key[0])}(?!\w)", text):
                    errored.add(key)

    pending = {key: 0 for key in configured}  # records since that stream's previous STATE (§1.2)
    last_record: dict = {}
    last_state: dict = {}
    first_record: dict = {}
    statuses: dict = {key: [] for key in configured}
    terminal_at: dict = {}
    record_running: set = set()

    for index, message in enumerate(parsed):
        kind = message["type"]
        if kind == "RECORD":
            record = message.get("record")
            if not isinstance(record, dict):
                found.add("§3.1 record", None, "shape", f"message {index}: RECORD without a record object")
                continue
            key = (record.get("stream"), record.get("namespace"))
            name = key[0]
            # §3.1, §6: stream in the configured catalog with an exactly equal namespace (null != "")
            if key not in configured:
                found.add("§3.1 stream", key, "unknown", f"{name}: RECORD for a stream not in the configured catalog "
                          f"(stream={name!r}, namespace={key[1]!r})")
                continue
            data = record.get("data")
            if not isinstance(data, dict) or not data:  # §3.1: empty or non-object data is dropped / fails
                found.add("§3.1 data", key, "empty", f"{name}: RECORD data is not a non-empty object: {_short(data)}")
            emitted_at = record.get("emitted_at")  # §6: integer epoch milliseconds
            if not _strict_integer(None, emitted_at) or not 10**12 <= emitted_at < 10**14:
                found.add("§6 emitted_at", key, "emitted_at", f"{name}: emitted_at is not integer ms: {_short(emitted_at)}")
            if key in terminal_at:  # §2: no records after the stream's terminal status
                found.add("§2 order", key, "record after terminal",
                          f"{name}: RECORD after its {statuses[key][-1]} status")
            pending[key] += 1
            last_record[key] = index
            first_record.setdefault(key, index)
            if isinstance(data, dict):
                _check_data(found, name, key, data, configured[key], checkers[key])

        elif kind == "STATE":
            state = message.get("state") or {}
            # §1.3, §7.3: STREAM state only (no LEGACY, no GLOBAL), with a descriptor and sourceStats
            if state.get("type") != "STREAM":
                found.add("§1 state type", None, str(state.get("type")), f"STATE of type {state.get('type')!r}, not STREAM")
                continue
            descriptor = _descriptor_key((state.get("stream") or {}).get("stream_descriptor"))
            if descriptor is None:
                found.add("§1 state descriptor", None, "missing", f"STATE without stream.stream_descriptor: {_short(state)}")
                continue
            key = by_descriptor.get(descriptor)
            if key is None:
                found.add("§1 state descriptor", descriptor, "unknown", f"{descriptor[0]}: STATE for a stream not in the catalog")
                continue
            count = (state.get("sourceStats") or {}).get("recordCount", MISSING)
            if count is MISSING:
                found.add("§1 sourceStats", key, "missing", f"{key[0]}: STATE without sourceStats.recordCount")
            elif not isinstance(count, float):
                found.add("§1 sourceStats", key, "type", f"{key[0]}: sourceStats.recordCount {count!r} is not a float")
            if count is not MISSING and count != pending[key]:  # §1.2: records of this stream since its previous STATE
                found.add("§1 recordCount", key, "count", f"{key[0]}: STATE recordCount {count!r} but {pending[key]} "
                          f"RECORDs of the stream since its previous STATE")
            pending[key] = 0
            last_state[key] = index

        elif kind == "TRACE":
            trace = message.get("trace") or {}
            emitted_at = trace.get("emitted_at")  # §2, §6: else dropped (a trace's emitted_at is a number, ms)
            if not trace.get("type") or not isinstance(emitted_at, (int, float)) or isinstance(emitted_at, bool):
                found.add("§2 trace", None, "emitted_at", f"TRACE without type or emitted_at: {_short(trace)}")
            if trace.get("type") != "STREAM_STATUS":
                continue
            status = trace.get("stream_status") or {}
            descriptor = _descriptor_key(status.get("stream_descriptor"))
            key = by_descriptor.get(descriptor) if descriptor else None
            if key is None:  # §2: a status for a stream not in the catalog fails the sync
                found.add("§2 status stream", descriptor, "unknown",
                          f"{descriptor and descriptor[0]}: {status.get('status')} status for a stream not in the catalog")
                continue
            value = status.get("status")
            seen = statuses[key]
            if key in terminal_at:
                found.add("§2 status order", key, "after terminal", f"{key[0]}: {value} after {seen[-1]}")
            elif not seen and value != "STARTED":
                found.add("§2 status order", key, "first", f"{key[0]}: first status is {value}, not STARTED")
            elif seen and value not in {"RUNNING"} | TERMINAL:
                found.add("§2 status order", key, "middle", f"{key[0]}: {value} after {seen[-1]}")
            if value in TERMINAL:
                terminal_at.setdefault(key, index)
            if value == "RUNNING" and not status.get("reasons"):  # the CDK's HTTP client adds RATE_LIMITED ones (§2)
                record_running.add(key)
            seen.append(value)

    for key in configured:
        name, seen = key[0], statuses[key]
        # A stream that never started in a run that failed (e.g. a config error before any stream): no rule to apply.
        if run_has_errors and not seen and key not in first_record and key not in last_state:
            continue
        if seen and seen[-1] == "INCOMPLETE" and key not in errored:  # §2: INCOMPLETE only with an error for it
            found.add("§2 status", key, "incomplete", f"{name}: INCOMPLETE without an ERROR trace for the stream")
        # §2: the CDK emits RUNNING (without reasons) with a stream's first record: so only for streams with records
        if key in record_running and key not in first_record and (complete or key in terminal_at):
            found.add("§2 status", key, "running", f"{name}: RUNNING status but no RECORD of the stream")
        if key in first_record and "RUNNING" not in seen:  # §2 (CAT): STARTED, RUNNING+, COMPLETE
            found.add("§2 status", key, "no running", f"{name}: RECORDs but no RUNNING status")
        if not complete:  # a killed read: the rules below hold only for a whole read
            continue
        if key not in last_state:  # §1.4 #2, §7.4: every stream emits a state, even an empty one
            found.add("§1 state", key, "none", f"{name}: no STATE for the stream")
        elif last_record.get(key, -1) > last_state[key]:  # §2, §7.4: a state after the last record
            found.add("§1 state", key, "last", f"{name}: {pending[key]} RECORDs after the stream's last STATE")
        if not seen:  # §2: every configured stream emits statuses
            found.add("§2 status", key, "none", f"{name}: no stream status")
        elif seen[-1] not in TERMINAL:
            found.add("§2 status", key, "no terminal", f"{name}: last status is {seen[-1]}, not COMPLETE")
    return found.lines()


def _check_data(found: _Found, name: str, key: tuple, data: dict, configured_stream: dict, checker) -> None:
    schema = configured_stream["stream"].get("json_schema") or {}
    # §3.3, §7.6: Draft 7, strict integers, CAT's date-time format
    for error in checker.iter_errors(data):
        path = "/".join(str(p) for p in error.absolute_path) or "<record>"
        field = "/".join(str(p) for p in error.absolute_path if not isinstance(p, int))
        found.add("§3.3 schema", key, f"{field}:{error.validator}",
                  f"{name}: {path} = {_short(error.instance)}: {error.validator} {_short(error.validator_value, 60)}")
    # §3.1, §7.7: top-level fields outside properties are dropped by the platform
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        found.add("§3.1 properties", key, "none", f"{name}: the stream's json_schema has no properties")
    else:
        for field in data.keys() - properties.keys():
            found.add("§3.1 undeclared", key, field, f"{name}: field {field!r} is not in the schema's properties "
                      f"(value {_short(data[field])})")
    # §3.1, §3.3, §7.8: primary key present, not all null, scalar
    primary_key = configured_stream.get("primary_key") or []
    values = [_navigate(data, path) for path in primary_key]
    for path, value in zip(primary_key, values):
        if value is MISSING:
            found.add("§3.1 primary key", key, f"{path}:missing", f"{name}: primary key {path} missing in {_short(data)}")
        elif isinstance(value, (list, dict)):
            found.add("§3.3 primary key", key, f"{path}:type", f"{name}: primary key {path} = {_short(value)} is not scalar")
    if primary_key and all(value is None or value is MISSING for value in values):
        found.add("§3.3 primary key", key, "null", f"{name}: primary key {primary_key} all null in {_short(data)}")


def assert_conforms(messages: Iterable[str | dict], configured_catalog: dict, complete: bool = True) -> None:
    """Fails with every violation of one read's output (see `violations`)."""
    found = violations(messages, configured_catalog, complete)
    if found:
        raise AssertionError(f"the read's output breaks {len(found)} Airbyte protocol/CAT rule(s):\n  - "
                             + "\n  - ".join(found))
