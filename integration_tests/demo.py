"""`make demo`: serve the fake Kustomer API on 127.0.0.1 and run spec, check, discover and read against it, then load
the read into DuckDB (in memory) and print one support metric from examples/analytics/ (CSAT per team).

    python -m integration_tests.demo [--scale 2.0] [--show-record customers]
"""

from __future__ import annotations

import argparse
import json

from integration_tests import cli
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults, scaled_sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the fake org's record counts")
    parser.add_argument("--show-record", default="conversations", help="stream whose first record to print")
    args = parser.parse_args(argv)

    # Reading every stream makes about 1,000 requests (a request per conversation for its times, events and forwards),
    # more than the sync's share of the default 1,000 a minute: a real org that size would wait; the demo does not.
    with FakeKustomer(Dataset(scaled_sizes(args.scale)), faults=Faults(rate_limit=10**6)) as fake:
        config = {"organization": "https://acme.kustomerapp.com", "api_key": API_KEY, "base_url": fake.url}
        print(f"Fake Kustomer API at {fake.url}; config: {json.dumps({**config, 'api_key': '***'})}\n")

        spec = cli.run("spec").of_type("SPEC")[0]["connectionSpecification"]
        print(f"$ source-kustomer spec      -> fields: {', '.join(spec['properties'])}")
        status = cli.run("check", config).of_type("CONNECTION_STATUS")[0]
        print(f"$ source-kustomer check     -> {status['status']} {status.get('message') or ''}".rstrip())
        catalog = cli.run("discover", config).of_type("CATALOG")[0]
        print(f"$ source-kustomer discover  -> {len(catalog['streams'])} streams")
        fake.requests_log.clear()
        read = cli.run("read", config, cli.configured_catalog(catalog))
        records = read.records_by_stream()
        print(f"$ source-kustomer read      -> {sum(map(len, records.values()))} records, {len(fake.requests_log)} requests\n")

        print(f"{'stream':<28}{'records':>9}")
        for stream in sorted(catalog["streams"], key=lambda s: s["name"]):
            print(f"{stream['name']:<28}{len(records.get(stream['name'], [])):>9}")
        if records.get(args.show_record):
            row = {k: v for k, v in records[args.show_record][0].items() if k != "relationships"}
            print(f"\nFirst {args.show_record} record (relationships left out):\n{json.dumps(row, indent=1)[:1500]}")
        errors = [t["error"]["message"] for t in read.of_type("TRACE") if t["type"] == "ERROR"]
        if errors or read.returncode:
            raise SystemExit(f"read failed: {errors or read.stderr[-2000:]}")
        show_metric(cli.configured_catalog(catalog), read)


def show_metric(catalog: dict, read: cli.Run, query: str = "csat_per_team", rows: int = 5) -> None:
    """The read loaded into DuckDB as Airbyte would store it, and one of examples/analytics/'s queries on it."""
    from examples.analytics import load_duckdb
    from examples.analytics.run import run, sql, table

    con = load_duckdb.connect()
    load_duckdb.load(con, catalog, [read.messages])
    columns, result = run(con, query)
    title = sql(query).splitlines()[0].removeprefix("-- ").rstrip(".")
    print(f"\n{title} (examples/analytics/{query}.sql on this read, loaded into DuckDB):")
    print(table(columns, result, rows))
    print("\nThe other queries (first response and resolution time, handle time, CSAT per agent, SLA breaches, backlog,"
          " occupancy):\n  .venv/bin/python -m examples.analytics.run --list\n"
          "  .venv/bin/python -m examples.analytics.run all --demo")


if __name__ == "__main__":
    main()
