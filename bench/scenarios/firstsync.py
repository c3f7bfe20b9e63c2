"""Scenario `firstsync`: how close a first sync comes to the least time the rate budget allows (issue 16; see
bench/README.md). Not in the default --scenarios."""

from __future__ import annotations

import time

from bench.common import log
from bench.harness import Connector, Server, list_streams, min_pages
from bench.measure import Measured
from bench.report import f1, met, status, table


def run(args, python: str, connector: Connector, report: dict) -> None:
    """A first sync against a binding budget, at each latency, with and without reset headers; see bench/README.md."""
    limit, window, percent = args.firstsync_limit, args.rate_window, args.firstsync_percent
    allowed = limit * percent / 100 / window  # requests per second
    server = Server(python, "firstsync", {"customers": args.firstsync_customers})
    forms = {"epoch": "yes (epoch)", "delta": "yes (delta)", "on_429": "on 429s only", "none": "none"}
    sets = [("customers, full refresh", ["customers"], ["customers"], False)]
    if args.firstsync_streams:
        sets.append(("every list stream, first incremental sync", list_streams(server), list(server.counts), True))
    rows, started, first_code = [], time.perf_counter(), len(connector.codes)
    try:
        for what, streams, fake_streams, incremental in sets:
            catalog = connector.catalog(server, streams, incremental=incremental, tag="-firstsync")
            expected = sum(server.counts[s] for s in fake_streams)
            for latency in args.firstsync_latencies:
                for form in args.firstsync_resets:
                    server.reset({"latency": latency, "rate_limit": limit, "rate_window": window,
                                  "reset_header": form})
                    pages = min_pages(server.stats(), fake_streams)
                    # Past the goal (for the fewest pages) the row's answer is "no": stop there, and project.
                    timeout = (args.firstsync_timeout if args.firstsync_timeout is not None
                               else 1.25 * pages / allowed + 10 + 5) or None
                    log(f"firstsync: {what}, latency {latency:g} s, reset header {form} "
                        f"(timeout {timeout or 0:.0f} s) ...")
                    r = connector.read(f"{what}, latency {latency:g} s, reset header {form}", server, catalog,
                                       percent=percent, timeout=timeout,
                                       tag=f"-firstsync-{len(streams)}-{latency:g}-{form}")
                    rows.append(firstsync_row(what, latency, forms.get(form, form), r, pages, expected, allowed,
                                              len(sets) > 1))
    finally:
        server.stop()
    took = time.perf_counter() - started
    customers = args.firstsync_customers
    codes = connector.codes[first_code:]
    if len({code.split()[0] for _, code in codes}) <= 1:
        code_text = f"- connector: {connector.shown} ({codes[0][1] if codes else connector.fingerprint()})\n"
    else:  # someone changed the code during the runs: say which run saw which code
        code_text = (f"- connector: {connector.shown}, **its code changed during these runs** (compare "
                     "only rows with the same code):\n" + "".join(f"  - {run}: {code}\n" for run, code in codes))
    share = limit * percent / 100  # requests per window
    pages = -(-customers // 100)
    window_bound = (-(-pages // max(1, int(share))) - 1) * window
    report["tables"].append((
        f"First sync against the rate budget: {customers:,} customers ({pages:,} pages of 100), "
        f"{limit} requests per {window:g} s window at max_api_usage_percent {percent} ({allowed:g} requests/s), "
        f"latency {', '.join(f'{x:g}' for x in args.firstsync_latencies)} s, reset headers "
        f"{' / '.join(args.firstsync_resets)}",
        "How close a first sync comes to the least time its rate budget allows (issue 16). One fake org "
        f"(bench/server.py) with {customers:,} customers; a first sync of the customers list alone (full refresh, a "
        "catalog of `customers` only)" + (", then of every list stream (a first incremental sync, no state)"
        if args.firstsync_streams else "") + f". The fake allows {limit} requests per fixed {window:g} s window "
        "(clock-aligned) and holds each answer `latency` s (requests wait in parallel); the connector runs at "
        f"max_api_usage_percent {percent}, so the allowed rate is {limit} x {percent}% / {window:g} s = "
        f"{allowed:g} requests/s. Each latency runs with each reset-header form ({', '.join(args.firstsync_resets)}; "
        "epoch: the fake's `X-Ratelimit-Reset` on every response, in epoch seconds; none: no such header, as the "
        "recorded live responses). Budget min = the requests the server "
        f"served (429s not counted) / {allowed:g}; the goal is wall <= 1.25 x budget min + 10 s, wall from process "
        "start to exit. In flight: the most API requests the server was serving at once (a connector that reads "
        "one page at a time shows 1). Over min pages: requests (429s included) minus the fewest list pages the "
        "data needs. A run is stopped once it is past the goal for the fewest pages, plus 5 s "
        "(--firstsync-timeout; 0: never): its wall is then a lower bound, and the ratio is projected from the "
        "share of the pages it had fetched (\"~\"). Peak RSS of the connector process. "
        f"Fixed windows let a sync send its share ({share:g}) at each window's start, so the least a sync of n "
        f"requests can take is about (ceil(n / {share:g}) - 1) x {window:g} s, below budget min (a ratio under 1 "
        f"is possible; for {pages:,} pages: {window_bound:g} s). "
        + (f"The {window:g} s window keeps the runs short; Kustomer's is a minute, and `x-ratelimit-limit` never "
           "says which. The connector learns a shorter window from two reset headers in a row; without the header it "
           "keeps to its share of a sliding minute (what Kustomer counts in), which on a short window is a sixth of "
           "the rate the fake allows: run the rows without it at a minute (`--rate-window 60 --firstsync-limit 300`, "
           "Kustomer's smallest plan, so that the budget binds). " if window != 60 else "")
        + f"This table took {took / 60:.1f} min.\n\n" + code_text + "\n" +
        table((["catalog"] if len(sets) > 1 else []) +
              ["latency s", "reset header", "wall s", "budget min s", "wall / budget min", "goal met (goal s)",
               "in flight (max)", "requests", "over min pages", "429s", "records", "peak RSS MB", "result"], rows)))


def firstsync_row(what: str, latency: float, form: str, r: Measured, pages: int, expected: int, allowed: float,
                  show_what: bool) -> list:
    stats = r.server
    sent, refused = stats["api_requests"], stats["fake"]["rate_limited"]
    served = sent - refused
    if r.timed_out:
        done = served / pages if pages else 0  # share of the pages fetched: the pace so far, kept up to the end
        projected = r.wall / done if done else None
        budget = max(served, pages) / allowed
        wall = f"> {r.wall:.1f} (stopped; ~{projected:,.0f} projected)" if projected else f"> {r.wall:.1f} (stopped)"
        ratio_text = f"~{projected / budget:.2f}" if projected else f"> {r.wall / budget:.2f}"
        goal = 1.25 * budget + 10
        goal_text = f"**no** (> {goal:.1f})"
        result = f"stopped after {r.wall:.0f} s, {r.total:,} of {expected:,} records"
    else:
        budget = served / allowed
        goal = 1.25 * budget + 10
        wall, ratio_text = f1(r.wall), f"{r.wall / budget:.2f}" if budget else ""
        goal_text = f"{met(r.wall <= goal)} ({goal:.1f})"
        result = status(r, expected)
        if r.errors:
            result += ": " + "; ".join(r.errors)[:200]
    return ([what] if show_what else []) + [
        f"{latency:g}", form, wall, f1(budget), ratio_text, goal_text, stats.get("in_flight_max", "?"),
        f"{sent:,}", "n/a (stopped)" if r.timed_out else f"{sent - pages:+,}", refused, f"{r.total:,}",
        f1(r.peak_rss_mb), result]
