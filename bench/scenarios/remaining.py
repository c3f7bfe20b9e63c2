"""Scenario `remaining`: the budget when `x-ratelimit-remaining` does not fall as the org's counter does (issue 30;
see bench/README.md). Not in the default --scenarios."""

from __future__ import annotations

import math
import os
import time

from bench.common import log
from bench.harness import Connector, Server, min_pages
from bench.measure import Measured
from bench.report import f1, met, section_facts, status, table

WINDOW = 60.0  # Kustomer's minute, counted per clock minute; no reset header, as every recorded response
TARGET = 1.5  # wall <= 1.5 x the budget minimum
FORMS = {"counted": "counted (Kustomer's clock-minute counter, as recorded)",
         "constant": "constant (limit - 1 on every response)",
         "alternating": "alternating (two pods, each counting its own)"}


def budget_min(served: int, share: int) -> float:
    """The least time `served` requests take at `share` a clock minute: the first minute's share at once, then a
    minute for each further share (the last minute's requests go at its start)."""
    return (math.ceil(served / share) - 1) * WINDOW if share else 0.0


def run(args, python: str, connector: Connector, report: dict) -> None:
    """The customers list alone, full refresh, at max_api_usage_percent --remaining-percent of a limit of
    --remaining-limit a minute, with the fake's x-ratelimit-remaining in each form."""
    limit, percent, customers = args.remaining_limit, args.remaining_percent, args.remaining_customers
    share = int(limit * percent / 100)  # the sync's requests a minute
    server = Server(python, "remaining", {"customers": customers})
    rows, started, load, first_code = [], time.perf_counter(), os.getloadavg()[0], len(connector.codes)
    try:
        catalog = connector.catalog(server, ["customers"], tag="-remaining")
        expected = server.counts["customers"]
        for form in args.remaining_forms:
            server.reset({"rate_limit": limit, "rate_window": WINDOW, "reset_header": "none", "remaining": form,
                          "latency": args.remaining_latency})
            pages = min_pages(server.stats(), ["customers"])
            timeout = (args.remaining_timeout if args.remaining_timeout is not None
                       else 3 * max(budget_min(pages, share), WINDOW) + 60) or None
            log(f"remaining: {customers:,} customers, {limit} a minute at {percent}%, remaining {form} "
                f"(timeout {timeout or 0:.0f} s) ...")
            r = connector.read(f"remaining {form}", server, catalog, percent=percent, timeout=timeout,
                               tag=f"-remaining-{form}")
            rows.append(remaining_row(form, r, pages, share, expected))
    finally:
        server.stop()
    pages = -(-customers // 100)
    report["tables"].append((
        f"The budget when x-ratelimit-remaining does not fall: {customers:,} customers ({pages} pages of 100), "
        f"{limit} requests a minute at max_api_usage_percent {percent} ({share} a minute), remaining "
        f"{' / '.join(args.remaining_forms)}",
        describe(args) + "\n\n"
        + section_facts(report, connector, first_code, started, load) + "\n\n" +
        table(["x-ratelimit-remaining", "requests", "min pages", "429s", f"most in one minute (share {share})",
               "wall s", "budget min s", "wall / budget min", f"<= {TARGET:g} x min", "pauses logged", "records",
               "result"], rows)))


def describe(args) -> str:
    """What the table measures, and how (the section's text above its facts)."""
    limit, percent, customers = args.remaining_limit, args.remaining_percent, args.remaining_customers
    share = int(limit * percent / 100)
    return "\n".join([
        "Issue 30: whether a sync keeps to its share when `x-ratelimit-remaining` does not fall with the org's "
        f"counter. One fake org (bench/server.py) with {customers:,} customers; the customers list alone, full "
        "refresh (a catalog of `customers` only).", "",
        f"- **the limit**: the fake announces `x-ratelimit-limit: {limit}` and enforces it per clock minute, with no "
        f"`X-Ratelimit-Reset` header (as every recorded response); latency {args.remaining_latency:g} s. The "
        "fake answers 429 on the org's real count, whatever `remaining` shows;",
        f"- **the share**: the connector runs at max_api_usage_percent {percent}: {share} requests a minute;",
        "- **`x-ratelimit-remaining`**, per row: *counted* is the limit minus what the fake counted in the minute "
        "(Kustomer's counter, the recorded behaviour); *constant* is the limit - 1 on every response (a counter "
        "that never falls); *alternating* is two pods behind a load balancer taking the responses in turn, each "
        "showing the limit minus its own count (half the real fall);",
        f"- **budget min** = (ceil(requests / {share}) - 1) x 60 s: the first minute's share at once, and each "
        "later minute's requests at its start. Requests here are those the fake served (429s not counted);",
        f"- **target**: wall <= {TARGET:g} x budget min. Before 1.3.0, *constant* took about one request a minute "
        f"after the first {share};",
        f"- **most in one minute**: the most requests the fake served in one clock minute (the share is {share});",
        "- **stopped runs**: a run past 3 x the budget min for the fewest pages (at least a minute) + 60 s is "
        "stopped (--remaining-timeout; 0: never). Its ratio is then projected from the pages it had fetched "
        "(\"~\")."])


def remaining_row(form: str, r: Measured, pages: int, share: int, expected: int) -> list:
    stats = r.server
    sent, refused = stats["api_requests"], stats["fake"]["rate_limited"]
    served = sent - refused
    if r.timed_out:  # stopped: its pace so far, kept up to the end, for all the pages it still needed
        minimum = budget_min(max(served, pages), share)
        projected = r.wall * pages / served if served else None
        wall = f"> {r.wall:.1f} (stopped; ~{projected:,.0f} projected)" if projected else f"> {r.wall:.1f} (stopped)"
        ratio_text = f"~{projected / minimum:.2f}" if projected and minimum else ""
        goal = "**no**"
        result = f"stopped after {r.wall:.0f} s, {r.total:,} of {expected:,} records"
    else:
        minimum = budget_min(served, share)
        wall = f1(r.wall)
        ratio_text = f"{r.wall / minimum:.2f}" if minimum else "n/a (one minute's share)"
        goal = met(r.wall <= TARGET * minimum) if minimum else "n/a"
        result = status(r, expected) + (": " + "; ".join(r.errors)[:200] if r.errors else "")
    return [FORMS.get(form, form), f"{sent:,}", f"{pages:,}", refused, stats["fake"]["max_per_window"], wall,
            f1(minimum), ratio_text, goal, r.pauses, f"{r.total:,}", result]
