"""Scenario `ratelimit`: a smaller org whose fake enforces a rate limit, synced at max_api_usage_percent 100 and 50,
against the minimum the allowed share permits (see bench/README.md)."""

from __future__ import annotations

from bench.common import log
from bench.harness import Connector, Server, list_streams, min_pages
from bench.report import f1, status, table


def run(args, python: str, connector: Connector, report: dict) -> None:
    server = Server(python, "ratelimit", {"customers": args.rl_customers})
    rows, runs = [], []
    try:
        catalog = connector.catalog(server, list_streams(server))
        streams = list(server.counts)
        server.reset()
        log("ratelimit: unthrottled baseline ...")
        base = connector.read("no limit", server, catalog, percent=100, tag="-rl-base")
        runs.append((None, 100, base))
        for limit in args.rate_limits:
            for percent in (100, 50):
                server.reset({"rate_limit": limit, "rate_window": args.rate_window, "reset_header": "epoch",
                              "search_rate_limit": args.search_rate_limit})
                log(f"ratelimit: {limit} per {args.rate_window:g} s, max_api_usage_percent {percent} ...")
                runs.append((limit, percent, connector.read(f"{limit}/{args.rate_window:g}s at {percent}%", server,
                                                            catalog, percent=percent, tag=f"-rl-{limit}-{percent}")))
    finally:
        server.stop()
    pages = min_pages(base.server, streams)
    expected = sum(server.counts.values())
    worst = 0.0
    for limit, percent, r in runs:
        allowed = None if limit is None else limit * percent / 100 / args.rate_window  # requests per second
        budget = None if allowed is None else pages / allowed
        floor = max(budget or 0, base.wall)
        per_window = None if limit is None else int(limit * percent / 100)
        # Fixed windows: all but the last window's share must wait for their window to end.
        windows_min = None if limit is None else (-(-pages // per_window) - 1) * args.rate_window
        if budget and budget >= base.wall:  # the budget binds: the target is about these runs
            worst = max(worst, r.wall / budget)
        fake = r.server["fake"]
        rows.append([
            "none" if limit is None else f"{limit} / {args.rate_window:g} s", f"{percent}%",
            "" if allowed is None else f"{allowed:.1f}", f"{pages:,}", f"{r.server['api_requests']:,}",
            fake["rate_limited"], "" if per_window is None else f"{fake['max_per_window']} ({per_window})",
            f1(r.wall), f1(budget), f1(windows_min),
            "" if not budget else f"{r.wall / budget:.2f}" + ("" if budget >= base.wall else " (not binding)"),
            f"{r.wall / floor:.2f}",
            r.pauses, status(r, expected), "; ".join(r.errors)[:200]])
    report["rate_worst"] = worst or None  # None: no run where the budget binds
    report["rate_runs"] = runs
    report["tables"].append((
        f"Rate-limited sync: {args.rl_customers:,} customers + small streams ({expected:,} records); the fake "
        f"enforces the limit per fixed window and {args.search_rate_limit} searches per window",
        table(["limit", "usage", "allowed req/s", "pages needed", "requests", "429s",
               "most in one window (share)", "wall s", "budget min s", "window-bound min s", "wall / budget min",
               "wall / max(budget min, unthrottled)", "pauses logged", "result", "errors"], rows)))
