"""Scenario `tricks`: two connectors side by side, alternating, at realistic latencies (see bench/README.md).

Not in the default --scenarios; needs --baseline-connector.
"""

from __future__ import annotations

import json
import statistics
import time

from bench.common import NO_LIMIT, log
from bench.harness import Connector, Server, find_connector, list_streams, min_pages
from bench.measure import Measured
from bench.report import f1, status, table


def run(args, python: str, connector: Connector, report: dict) -> None:
    """Two connectors (new: --connector, old: --baseline-connector), alternating, at each latency; see
    bench/README.md."""
    pair = {"new": connector, "old": Connector(find_connector(args.baseline_connector))}
    server = Server(python, "tricks", args.tricks_sizes)
    per_window = round(args.tricks_limit * args.rate_window / 60)
    rows = []
    try:
        # The lists both connectors read: a newer one's new streams would make it do more, not go slower.
        named = dict(zip(list_streams(server), server.counts))  # stream -> the fake's list
        known = [set(catalog_streams(c.catalog(server, list(named), incremental=args.tricks_incremental,
                                               tag=f"-{who}"))) for who, c in pair.items()]
        shared = [stream for stream in named if all(stream in k for k in known)]
        streams = [named[stream] for stream in shared]
        catalogs = {who: c.catalog(server, shared, incremental=args.tricks_incremental, tag=f"-{who}")
                    for who, c in pair.items()}
        for latency in args.tricks_latencies:
            limited = latency > 0
            faults = {"latency": latency, "rate_limit": per_window if limited else NO_LIMIT,
                      "rate_window": args.rate_window, "reset_header": "epoch",
                      "search_rate_limit": args.search_rate_limit if limited else None}
            percent = 50 if limited else 100
            runs: dict[str, list[Measured]] = {"new": [], "old": []}
            for number in range(1, args.tricks_rounds + 1):
                for who in (("new", "old") if number % 2 else ("old", "new")):
                    if limited:  # each run starts at the same phase of the fake's clock-aligned windows, not
                        # wherever the previous run's end put it (which would favour the faster start-up)
                        time.sleep(args.rate_window - time.time() % args.rate_window)
                    server.reset(faults)
                    log(f"tricks: latency {latency:g} s, round {number} of {args.tricks_rounds}, {who} ...")
                    runs[who].append(pair[who].read(f"{who}, latency {latency:g} s", server, catalogs[who],
                                                    percent=percent, tag=f"-tricks-{who}-{latency:g}-{number}"))
            new, old = runs["new"], runs["old"]
            pages = min_pages(new[0].server, streams)
            allowed = per_window * percent / 100 / args.rate_window if limited else None

            def med(values: list[float]) -> float:
                return statistics.median(values)

            def each(values: list[float]) -> str:
                return f"{med(values):.1f}" + (f" ({', '.join(f'{v:.1f}' for v in values)})" if len(values) > 1 else "")

            def both(get) -> str:
                return " / ".join(f"{get(r):,}" for r in (new[0], old[0]))

            expected = sum(server.counts[s] for s in streams)
            results = sorted({status(r, expected) for r in new + old})
            rows.append([
                f"{latency:g}", f"{args.tricks_limit} / min as {per_window} / {args.rate_window:g} s, {percent}%"
                if limited else "none, 100%", f1(pages / allowed) if allowed else "", each([r.wall for r in new]),
                each([r.wall for r in old]), f"{med([n.wall / o.wall for n, o in zip(new, old)]):.2f}",
                each([r.cpu_s for r in new]), each([r.cpu_s for r in old]),
                f"{med([n.cpu_s / o.cpu_s for n, o in zip(new, old)]):.2f}", both(lambda r: r.total),
                both(lambda r: r.server["api_requests"]),
                " / ".join(f1(max(r.peak_rss_mb for r in rs)) for rs in (new, old)),
                " / ".join(f"{max(r.server['fake']['rate_limited'] for r in rs)}" for rs in (new, old)),
                ", ".join(results)])
    finally:
        server.stop()
    report["tables"].append((
        f"Speed tricks: new vs old, {args.tricks_rounds} alternating rounds, "
        f"{'first incremental sync' if args.tricks_incremental else 'full refresh'} of "
        f"{', '.join(f'{n:,} {s}' for s, n in args.tricks_sizes.items())} + small streams "
        f"({sum(server.counts[s] for s in streams):,} records, the {len(streams)} list streams both read), each answer "
        "held `latency` s",
        f"- new: {pair['new'].shown} ({pair['new'].fingerprint()})\n"
        f"- old: {pair['old'].shown} ({pair['old'].fingerprint()})\n"
        "- wall and CPU s: median (each round); new/old: median of the rounds' ratios; records, requests: round 1; "
        "peak RSS: the rounds' maximum\n\n" +
        table(["latency s", "rate limit, usage", "budget min s", "new wall s", "old wall s", "wall new/old",
               "new CPU s", "old CPU s", "CPU new/old", "records new / old", "requests new / old",
               "peak RSS MB new / old", "429s new / old", "result"], rows)))


def catalog_streams(path) -> list[str]:
    return [entry["stream"]["name"] for entry in json.loads(path.read_text())["streams"]]
