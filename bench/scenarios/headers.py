"""Scenario `headers`: the budget without a reset header, and with it in each form (see bench/README.md)."""

from __future__ import annotations

from bench.common import log
from bench.harness import Connector, Server, list_streams, min_pages
from bench.report import f1, status, table


def run(args, python: str, connector: Connector, report: dict) -> None:
    """Kustomer's minute, with the reset header in each form live responses may take: none (as recorded), epoch
    seconds, seconds from now; the budget binds, and nothing else uses the org."""
    server = Server(python, "headers", {"customers": args.header_customers})
    limit, percent, rows = args.header_limit, 50, []
    try:
        catalog = connector.catalog(server, list_streams(server))
        streams = list(server.counts)
        for form in ("none", "epoch", "delta"):
            server.reset({"rate_limit": limit, "rate_window": 60.0, "reset_header": form})
            log(f"headers: {limit} a minute at {percent}%, reset header {form} ...")
            r = connector.read(f"reset header {form}", server, catalog, percent=percent, tag=f"-headers-{form}")
            pages = min_pages(r.server, streams)
            share = limit * percent / 100
            budget = r.server["api_requests"] / (share / 60)
            fake = r.server["fake"]
            rows.append([form, f"{limit} / 60 s", f"{percent}%", f"{r.server['api_requests']:,}", f"{pages:,}",
                         f"{fake['max_per_window']} ({share:g} + 5%: {share + limit * 0.05:g})", fake["rate_limited"],
                         f1(r.wall), f1(budget), f"{r.wall / budget:.2f}", r.pauses,
                         status(r, sum(server.counts.values())), "; ".join(r.errors)[:200]])
    finally:
        server.stop()
    report["tables"].append((
        f"The budget without a reset header: {args.header_customers:,} customers + small streams, full refresh, the "
        "fake counting per clock minute (budget min = requests / allowed rate)",
        table(["reset header", "limit", "usage", "requests", "min pages", "most in one minute (target)", "429s",
               "wall s", "budget min s", "wall / budget min", "pauses logged", "result", "errors"], rows)))
