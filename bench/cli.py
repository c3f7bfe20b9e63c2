"""Benchmark of `source-kustomer` against the fake Kustomer API, with the Singer tap and a raw HTTP floor beside it.

    python bench/run.py [--customers 50000 --conversations 100000 --messages 300000] [--quick] [--profile]
                        [--scenarios throughput,ratelimit,scaling,headers,idle] [--rounds 3]
    python bench/run.py --scenarios tricks --connector NEW --baseline-connector OLD [--results bench/out/tricks.md]
    python bench/run.py --scenarios firstsync [--connector X] [--firstsync-streams] [--results bench/out/firstsync.md]
    python bench/run.py --scenarios remaining [--remaining-forms counted,constant,alternating] [--results ...]
    python bench/run.py --scenarios times [--times-conversations 2000,20000] [--results bench/out/times.md]

(or `python -m bench ...` from the repository root). What each scenario measures, how to run it and how to read
the results: bench/README.md. Writes bench/results.md (or --results) above its "## What we tried" section.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from bench.common import OUT, RESULTS, log, shown
from bench.harness import Connector, find_connector, shown_executable
from bench.measure import end_children
from bench.report import machine, write_results
from bench.scenarios import DEFAULT, SCENARIOS

EXECUTABLE_OPTIONS = ("--connector", "--baseline-connector")
PATH_OPTIONS = (*EXECUTABLE_OPTIONS, "--results")


def shown_arguments(argv: list[str]) -> list[str]:
    """The command line as the results print it: the paths it names relative to the repository, never a home or
    /tmp path verbatim (a connector outside the repository is named by what is installed there)."""

    def path(option: str, value: str) -> str:
        return shown_executable(value) if option in EXECUTABLE_OPTIONS else shown(value)

    arguments, option = [], None
    for token in argv:
        name, equals, value = token.partition("=")
        if option:
            arguments.append(path(option, token))
            option = None
        elif token in PATH_OPTIONS:
            arguments.append(token)
            option = token
        elif equals and name in PATH_OPTIONS:
            arguments.append(f"{name}={path(name, value)}")
        else:
            arguments.append(shown(token) if token.startswith("/") else token)
    return arguments


def parse(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """The command line, with every default filled in (--quick: small sizes everywhere)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int)
    parser.add_argument("--conversations", type=int)
    parser.add_argument("--messages", type=int)
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere (~a tenth), to check it works")
    parser.add_argument("--scenarios", default=DEFAULT, help=f"comma-separated, of {', '.join(SCENARIOS)} (default "
                        f"{DEFAULT})")
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
    parser.add_argument("--connector", help="the source-kustomer executable (default: the repository's .venv, else "
                        "the one beside the running Python, else the first on PATH)")
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
    parser.add_argument("--remaining-customers", type=int, help="remaining: customers (default 7,000, 70 pages; "
                        "1,000 with --quick)")
    parser.add_argument("--remaining-limit", type=int, help="remaining: x-ratelimit-limit, requests per 60 s "
                        "(default 100; 20 with --quick)")
    parser.add_argument("--remaining-percent", type=int, default=50, help="remaining: max_api_usage_percent")
    parser.add_argument("--remaining-forms", default="counted,constant,alternating", help="remaining: the fake's "
                        "x-ratelimit-remaining forms (comma-separated: counted, constant, alternating)")
    parser.add_argument("--remaining-latency", type=float, default=0.0, help="remaining: seconds per answer")
    parser.add_argument("--remaining-timeout", type=float, help="remaining: seconds before a run is stopped "
                        "(default: 3 x its budget min for the fewest pages, at least a minute, + 60 s; 0: never)")
    parser.add_argument("--times-conversations", help="times: org sizes, comma-separated (default 2000,20000; "
                        "200,2000 with --quick)")
    parser.add_argument("--times-limit", type=int, default=500, help="times: requests per --rate-window")
    parser.add_argument("--times-percent", type=int, default=100, help="times: max_api_usage_percent")
    parser.add_argument("--times-latency", type=float, default=0.3, help="times: seconds per answer")
    parser.add_argument("--times-changed", type=float, default=0.01, help="times: share of the conversations "
                        "changed, and as many new ones, before the last later sync")
    parser.add_argument("--times-start-days", type=int, default=366, help="times: a first sync also with a "
                        "start_date this many days back (0: not)")
    parser.add_argument("--times-timeout", type=float, default=1800, help="times: seconds before a run is stopped "
                        "(0: never)")
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
    args.remaining_customers = args.remaining_customers or (1_000 if quick else 7_000)
    args.remaining_limit = args.remaining_limit or (20 if quick else 100)
    args.remaining_forms = [x for x in args.remaining_forms.split(",") if x]
    args.times_conversations = [int(x) for x in (args.times_conversations or ("200,2000" if quick else "2000,20000"))
                                .split(",") if x]
    args.scenario_names = set(args.scenarios.split(","))
    if unknown := args.scenario_names - set(SCENARIOS):
        parser.error(f"unknown --scenarios {', '.join(sorted(unknown))} (use {', '.join(SCENARIOS)})")
    if "tricks" in args.scenario_names and not args.baseline_connector:
        parser.error("the tricks scenario needs --baseline-connector")
    return args


def main(argv: list[str] | None = None, invocation: tuple[str, ...] = ("python", "bench/run.py"),
         prog: str | None = None) -> None:
    args = parse(argv, prog)
    OUT.mkdir(exist_ok=True)
    executable = find_connector(args.connector)
    python = str(Path(executable).with_name("python"))
    connector = Connector(executable)
    command = shlex.join([*invocation, *shown_arguments(sys.argv[1:] if argv is None else argv)])
    facts = machine(python) + [f"connector executable: {connector.shown}"]
    log(f"{command}\n  " + "\n  ".join(facts))
    started = time.perf_counter()
    report: dict = {"tables": [], "load": os.getloadavg(), "command": command, "facts": facts}
    try:
        for name, scenario in SCENARIOS.items():
            if name not in args.scenario_names:
                continue
            try:
                scenario(args, python, connector, report)
            except Exception:  # one broken scenario still leaves the others' tables
                log(f"{name} failed:\n{traceback.format_exc()}")
                report["tables"].append((f"{name}: failed", f"```\n{traceback.format_exc()[-3000:]}```"))
    finally:
        end_children()
    report["codes"] = connector.codes
    print(write_results(report, command, facts, started, args.results))
    log(f"wrote {shown(args.results)} in {(time.perf_counter() - started) / 60:.1f} min")
