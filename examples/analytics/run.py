"""Runs the support-metric queries beside this file on DuckDB and prints their rows.

    python -m examples.analytics.run --list
    python -m examples.analytics.run csat_per_team --db kustomer.duckdb          # tables load_duckdb.py made
    python -m examples.analytics.run all --catalog configured_catalog.json --read read.jsonl   # a sync's output
    python -m examples.analytics.run first_response_time --demo                  # the fake org (from a checkout)

Options: --timezone ZONE (days and months are cut in it; default UTC), --limit N (rows printed per query, 0: all).
With --read, the files (one per sync, oldest first) are loaded into an in-memory database as Airbyte would store
them (load_duckdb.py). With --demo, the repository's fake Kustomer API is served on 127.0.0.1 and the streams the
queries need are synced through the installed `source-kustomer` command first.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from examples.analytics import load_duckdb

HERE = Path(__file__).resolve().parent
QUERIES = {path.stem: path for path in sorted(HERE.glob("*.sql"))}
VIEWS = sorted((HERE / "views").glob("*.sql"))  # what several queries share (live_conversations), created first


def sql(name: str) -> str:
    return QUERIES[name].read_text()


def streams_of(name: str) -> list[str]:
    """The streams a query's header says it needs (its `-- Streams:` lines)."""
    header, inside = [], False
    for line in sql(name).splitlines():
        if line.startswith("-- Streams:"):
            inside = True
        elif inside and not line.startswith("--   "):
            break
        if inside:
            header.append(line)
    return re.findall(r"([a-z_]+) \(", " ".join(header))


def missing_tables(con: Any, name: str) -> list[str]:
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return [stream for stream in streams_of(name) if stream not in tables]


def run(con: Any, name: str) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of one query, the views it reads created first."""
    query = sql(name)
    for view in VIEWS:
        if view.stem in query:
            con.execute(view.read_text())
    cursor = con.execute(query)
    return [d[0] for d in cursor.description], cursor.fetchall()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10] if isinstance(value, date) and not isinstance(value, datetime) else value.isoformat()
    return str(value)


def table(columns: list[str], rows: Iterable[tuple], limit: int = 0) -> str:
    rows = list(rows)
    shown = rows[:limit] if limit else rows
    cells = [[_cell(v) for v in row] for row in shown]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in shown) and shown for i in range(len(columns))]

    def line(values):
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    out = [line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells]
    if len(shown) < len(rows):
        out.append(f"... {len(rows) - len(shown)} more rows")
    return "\n".join(out)


def demo_database(names: list[str]) -> Any:
    """Serves the fake org, syncs what the queries need (incremental, as the headers recommend) and loads it."""
    from integration_tests import cli
    from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults

    wanted = {stream for name in names for stream in streams_of(name)}
    with FakeKustomer(Dataset(), faults=Faults(rate_limit=10**6)) as fake:
        config = {"organization": "acme", "api_key": API_KEY, "base_url": fake.url}
        discovered = cli.run("discover", config).of_type("CATALOG")[0]
        catalog = cli.configured_catalog(discovered, wanted, incremental=True)
        read = cli.run("read", config, catalog)
        if read.errors() or read.returncode:
            raise SystemExit(f"the demo's read failed: {read.errors() or read.stderr[-2000:]}")
    con = load_duckdb.connect()
    load_duckdb.load(con, catalog, [read.messages])
    return con


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("query", nargs="?", help=f"one of: {', '.join(QUERIES)}; or all")
    parser.add_argument("--list", action="store_true", help="list the queries with what each computes")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--db", help="a DuckDB database file holding the synced tables")
    source.add_argument("--read", nargs="+", type=Path, help="files of `source-kustomer read` output, oldest first")
    source.add_argument("--demo", action="store_true", help="sync the repository's fake Kustomer org first")
    parser.add_argument("--catalog", type=Path, help="with --read: the configured catalog of the syncs")
    parser.add_argument("--timezone", default="UTC", help="time zone days and months are cut in (default UTC)")
    parser.add_argument("--limit", type=int, default=20, help="rows printed per query (0: all; default 20)")
    args = parser.parse_args(argv)

    if args.list or not args.query:
        for name in QUERIES:
            first = sql(name).splitlines()[0].removeprefix("-- ")
            print(f"{name:<24}{first}  [streams: {', '.join(streams_of(name))}]")
        return 0
    names = list(QUERIES) if args.query == "all" else [args.query]
    unknown = [n for n in names if n not in QUERIES]
    if unknown:
        parser.error(f"no query {unknown[0]}; one of: {', '.join(QUERIES)}")
    if args.read:
        if not args.catalog:
            parser.error("--read needs --catalog")
        con = load_duckdb.connect()
        load_duckdb.load(con, json.loads(args.catalog.read_text()), [p.read_text().splitlines() for p in args.read])
    elif args.demo:
        con = demo_database(names)
    elif args.db:
        con = load_duckdb.connect(args.db)
    else:
        parser.error("say where the data is: --db, --read or --demo")
    if not re.fullmatch(r"[A-Za-z0-9_/+-]+", args.timezone):
        parser.error(f"not a time zone name: {args.timezone}")
    con.execute(f"SET TimeZone = '{args.timezone}'")
    status = 0
    for name in names:
        print(f"== {name}: {sql(name).splitlines()[0].removeprefix('-- ')}")
        missing = missing_tables(con, name)
        if missing:
            print(f"skipped: no table {', '.join(missing)} (sync those streams)\n")
            status = 1 if len(names) == 1 else status
            continue
        columns, rows = run(con, name)
        print(table(columns, rows, args.limit) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
