"""Loads the output of `source-kustomer read` into DuckDB as Airbyte's typing and deduping stores it, so the queries
beside this file run on it as they would on a warehouse an Airbyte connection fills.

    python -m examples.analytics.load_duckdb --catalog configured_catalog.json --db kustomer.duckdb read1.jsonl [read2.jsonl ...]

Each file is one sync's stdout (`source-kustomer read --config ... --catalog ... > read1.jsonl`), oldest first;
`--catalog` is the configured catalog the syncs used (or the discovered one: then every stream is Incremental |
Append + Deduped). What it makes, per stream:

- one table named as the stream, one column per top-level property of the stream's JSON schema, typed as Airbyte's
  destinations type it: string -> VARCHAR, string with format date-time -> TIMESTAMP WITH TIME ZONE (format date ->
  DATE), integer -> BIGINT, number -> DOUBLE, boolean -> BOOLEAN, object, array and anything else -> JSON; plus
  `_airbyte_extracted_at` (when the record was read). A value that does not fit its column's type is stored as NULL,
  as Airbyte's typing does (it notes it in `_airbyte_meta`; this loader does not keep that column). Properties
  whose names differ only in case (`displayName`, `displayname`) are kept: the second gets a `_1` suffix.
- destination sync mode `append_dedup` (the default): one row per primary key, the record with the latest cursor
  value (then the latest read); when that record has `_ab_cdc_deleted_at` set (the connector's deletion marker) the
  row is dropped, as Airbyte's destinations drop it. `append`: every record. `overwrite`: the records of the last
  file only.

Record fields the schema does not declare are dropped (Airbyte drops them too; the connector keeps them in
`otherAttributes`). Time zone: timestamps are instants; `connect()` sets the session's TimeZone to UTC so that
date_trunc and CAST(... AS DATE) cut days and months in UTC: set it to the org's zone to cut them there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN"}


def _types(prop: dict) -> list[str]:
    kind = prop.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    return [k for k in kinds if k != "null"]


def column_type(prop: dict) -> str:
    """The DuckDB type Airbyte's typing gives a JSON-schema property."""
    kinds = _types(prop)
    if len(kinds) != 1:
        return "JSON"  # a union or no type: Airbyte stores it as JSON
    if kinds[0] == "string":
        fmt, airbyte = prop.get("format"), prop.get("airbyte_type")
        if fmt == "date-time":
            return "TIMESTAMP" if airbyte == "timestamp_without_timezone" else "TIMESTAMP WITH TIME ZONE"
        if fmt == "date":
            return "DATE"
        return "VARCHAR"
    return TYPES.get(kinds[0], "JSON")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Stream:
    """One stream of the catalog: its table's columns, primary key, cursor and destination sync mode."""

    def __init__(self, entry: dict):
        stream = entry.get("stream", entry)
        self.name: str = stream["name"]
        properties = (stream.get("json_schema") or {}).get("properties") or {}
        self.columns: dict[str, str] = {}  # column -> DuckDB type
        self.source: dict[str, str] = {}  # column -> record field
        seen: set[str] = set()
        for field, prop in properties.items():
            column, n = field, 0
            while column.lower() in seen:
                n += 1
                column = f"{field}_{n}"
            seen.add(column.lower())
            self.columns[column] = column_type(prop)
            self.source[column] = field
        key = entry.get("primary_key") or stream.get("source_defined_primary_key") or []
        self.primary_key: list[str] = [k[0] if isinstance(k, list) else k for k in key]
        cursor = entry.get("cursor_field") or stream.get("default_cursor_field") or []
        self.cursor: str | None = cursor[0] if cursor else None
        self.mode: str = entry.get("destination_sync_mode") or "append_dedup"
        if not self.primary_key and self.mode == "append_dedup":
            self.mode = "append"


def catalog_streams(catalog: dict) -> dict[str, Stream]:
    """A discovered or configured catalog (or a CATALOG message) by stream name."""
    catalog = catalog.get("catalog", catalog)
    return {s.name: s for s in map(Stream, catalog["streams"])}


def records(lines: Iterable[str | dict]) -> Iterator[tuple[str, dict, int]]:
    """(stream, data, emitted_at) of every RECORD message among the lines of a read's output."""
    for line in lines:
        if isinstance(line, str):
            if not line.startswith("{"):
                continue
            try:
                line = json.loads(line)
            except ValueError:
                continue
        if line.get("type") == "RECORD":
            record = line["record"]
            yield record["stream"], record["data"], record.get("emitted_at") or 0


ISO = re.compile(r"(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d(?::\d\d)?)(?:[.,](\d+))?)?\s*(Z|z|[+-]\d\d(?::?\d\d)?)?")


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 date-time (any fraction of a second; no offset: UTC), or None."""
    match = ISO.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        return None
    day, clock, fraction, offset = match.groups()
    clock = clock or "00:00:00"
    clock += ":00" if len(clock) == 5 else ""
    fraction = (fraction or "")[:6].ljust(6, "0")
    zone = "+00:00" if offset in (None, "Z", "z") else offset if ":" in offset or len(offset) == 3 else (
        f"{offset[:3]}:{offset[3:]}")
    zone += ":00" if len(zone) == 3 else ""
    try:
        return datetime.fromisoformat(f"{day}T{clock}.{fraction}{zone}")
    except ValueError:
        return None


def coerce(value: Any, duck_type: str) -> Any:
    """The value as Airbyte's typing stores it in a column of that type (None when it does not fit); timestamps
    and dates as ISO text, JSON as its JSON text."""
    if value is None:
        return None
    if duck_type == "JSON":
        return json.dumps(value, sort_keys=False, separators=(",", ":"))
    if duck_type == "VARCHAR":
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if duck_type == "BOOLEAN":
        return value if isinstance(value, bool) else None
    if duck_type == "BIGINT":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        return int(value) if isinstance(value, float) and value.is_integer() else None
    if duck_type == "DOUBLE":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if duck_type.startswith("TIMESTAMP"):
        moment = _instant(value)
        if moment is None:
            return None
        if duck_type == "TIMESTAMP":
            return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
        return moment.isoformat()
    if duck_type == "DATE":
        try:
            return date.fromisoformat(value[:10]).isoformat() if isinstance(value, str) else None
        except ValueError:
            return None
    return value


def _sort_key(stream: Stream, data: dict, emitted_at: int, position: int) -> tuple:
    cursor = data.get(stream.cursor) if stream.cursor else None
    moment = _instant(cursor) if isinstance(cursor, str) else None
    if moment is not None:
        cursor_key: tuple = (1, 0, moment.timestamp(), "")
    elif isinstance(cursor, (int, float)) and not isinstance(cursor, bool):
        cursor_key = (1, 1, float(cursor), "")
    elif cursor is not None:
        cursor_key = (1, 2, 0.0, str(cursor))
    else:
        cursor_key = (0, 0, 0.0, "")  # a null cursor loses to any value (NULLS LAST in a descending order)
    return cursor_key, emitted_at, position


def connect(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose session time zone is UTC (date_trunc and date casts of TIMESTAMPTZ use it)."""
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    return con


def load(con: duckdb.DuckDBPyConnection, catalog: dict, syncs: Iterable[Iterable[str | dict]],
         streams: Iterable[str] | None = None) -> dict[str, int]:
    """Loads the records of one or more syncs (each an iterable of output lines or parsed messages, oldest first)
    into one table per stream of the catalog (or of `streams`), replacing those tables. Returns rows per table."""
    known = catalog_streams(catalog)
    wanted = set(streams) if streams is not None else set(known)
    rows: dict[str, dict[Any, tuple]] = {name: {} for name in wanted if name in known}
    position = 0
    for sync_number, lines in enumerate(syncs):
        for name, data, emitted_at in records(lines):
            if name not in rows:
                continue
            stream, position = known[name], position + 1
            if stream.mode == "overwrite" and rows[name] and next(iter(rows[name].values()))[3] != sync_number:
                rows[name] = {}
            if stream.mode == "append_dedup":
                key = tuple(json.dumps(data.get(k), sort_keys=True) for k in stream.primary_key)
                candidate = (_sort_key(stream, data, emitted_at, position), data, emitted_at, sync_number)
                if key not in rows[name] or rows[name][key][0] < candidate[0]:
                    rows[name][key] = candidate
            else:
                rows[name][position] = ((), data, emitted_at, sync_number)
    counts = {}
    for name, kept in rows.items():
        stream = known[name]
        # Airbyte applies a deletion marker where the stream declares the column (the connector's customers,
        # conversations, messages): the row goes.
        drops = stream.mode == "append_dedup" and "_ab_cdc_deleted_at" in stream.source.values()
        final = [(data, emitted_at) for _, data, emitted_at, _ in kept.values()
                 if not (drops and data.get("_ab_cdc_deleted_at"))]
        counts[name] = _write_table(con, stream, final)
    return counts


def _write_table(con: duckdb.DuckDBPyConnection, stream: Stream, final: list[tuple[dict, int]]) -> int:
    columns = {**stream.columns, "_airbyte_extracted_at": "TIMESTAMP WITH TIME ZONE"}
    definition = ", ".join(f"{quote(c)} {t}" for c, t in columns.items())
    con.execute(f"CREATE OR REPLACE TABLE {quote(stream.name)} ({definition})")
    if not final:
        return 0
    # Values go through a newline-delimited JSON file read with every column as text (JSON columns as JSON), then
    # cast in SQL: fast for large reads, and the casts are DuckDB's own.
    handle, path = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(handle, "w") as out:
            for data, emitted_at in final:
                row = {f"c{i}": coerce(data.get(stream.source.get(c, c)), t) for i, (c, t) in
                       enumerate(stream.columns.items())}
                row[f"c{len(stream.columns)}"] = datetime.fromtimestamp(emitted_at / 1000, timezone.utc).isoformat()
                out.write(json.dumps(row) + "\n")
        names = list(columns)
        text_columns = {f"c{i}": "VARCHAR" for i in range(len(names))}
        selects = ", ".join(
            f"CAST(c{i} AS {t})" if t != "VARCHAR" else f"c{i}" for i, t in enumerate(columns.values()))
        spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in text_columns.items()) + "}"
        con.execute(f"INSERT INTO {quote(stream.name)} SELECT {selects} FROM read_json(?, format = 'newline_delimited', "
                    f"columns = {spec}, maximum_object_size = 268435456)", [path])
    finally:
        os.unlink(path)
    return len(final)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reads", nargs="+", type=Path, help="files of `source-kustomer read` output, oldest first")
    parser.add_argument("--catalog", type=Path, required=True, help="the configured (or discovered) catalog")
    parser.add_argument("--db", default="kustomer.duckdb", help="DuckDB database file (default kustomer.duckdb)")
    parser.add_argument("--streams", help="comma-separated streams to load (default: every stream of the catalog)")
    args = parser.parse_args(argv)
    catalog = json.loads(args.catalog.read_text())
    con = connect(args.db)
    syncs = [path.read_text().splitlines() for path in args.reads]
    counts = load(con, catalog, syncs, args.streams.split(",") if args.streams else None)
    for name, count in sorted(counts.items()):
        print(f"{name:<28}{count:>9} rows")
    con.close()


if __name__ == "__main__":
    main()
