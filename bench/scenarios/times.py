"""Scenario `times`: what conversation_times costs, by search against per conversation (issue 32; see
bench/README.md). Not in the default --scenarios."""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import time

from bench.common import log
from bench.harness import Connector, Server
from bench.measure import Measured
from bench.report import f1, met, section_facts, table

SEARCH_REACH = dt.timedelta(days=700)  # the manifest's search_reach (P700D): search reads what is newer
STEP = dt.timedelta(days=30)  # the search's windows (components/times.py STEP)
TIMES = "GET /v1/conversations/<id>/times"
LIST = "GET /v1/conversations"
SEARCH = "POST /v1/customers/search"
FEW = 3  # "at most a few requests": a later sync with nothing changed
# The two ways the connector reads conversation_times: search (the context served), and per conversation (the
# context refused, as Kustomer answers a plan or key without it: one request per conversation changed).
PATHS = {"search": {}, "per-conversation": {"refuse_contexts": ["conversation_time"], "refuse_context_status": 400}}


def stamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def windows(start: dt.datetime, end: dt.datetime) -> int:
    """The 30-day search windows from `start` to `end` (components/times.py: a window, then the next from 1 ms
    after it ends)."""
    return max(1, math.floor((end - start) / (STEP + dt.timedelta(milliseconds=1))) + 1)


def run(args, python: str, connector: Connector, report: dict) -> None:
    """For each org size: a first sync of conversation_times alone (no start_date; also with a start_date
    --times-start-days back), a later sync with nothing changed, and one after --times-changed of the
    conversations changed and as many new ones; each by search and per conversation (the context refused)."""
    limit, window, percent, latency = args.times_limit, args.rate_window, args.times_percent, args.times_latency
    allowed = limit * percent / 100 / window  # requests per second
    rows, started, load, first_code = [], time.perf_counter(), os.getloadavg()[0], len(connector.codes)
    notes = []
    for n in args.times_conversations:
        rows += size_rows(args, python, connector, n, allowed, notes)
    took = time.perf_counter() - started
    report["tables"].append((
        "conversation_times by search against per conversation: "
        f"{', '.join(f'{n:,}' for n in args.times_conversations)} conversations created in the last year, "
        f"latency {latency:g} s, {limit} requests per {window:g} s at max_api_usage_percent {percent}",
        describe(args, took) + "\n\n" + "".join(f"- {note}\n" for note in notes)
        + section_facts(report, connector, first_code, started, load) + "\n\n" +
        table(["conversations", "sync", "path", "requests", "list / searches (time + conversation) / by "
               "conversation", "per 100 conversations", "target (<=)", "met", "records (expected)", "wall s",
               "budget min s", "wall / budget min", "in flight (max)", "429s", "result"], rows)))


def describe(args, took: float) -> str:
    """What the table measures, and how (the section's text above its facts)."""
    limit, window, percent, latency = args.times_limit, args.rate_window, args.times_percent, args.times_latency
    allowed, changed = limit * percent / 100 / window, args.times_changed
    now, days = dt.datetime.now(), dt.timedelta(days=args.times_start_days)
    start = (f"; and with a start_date {args.times_start_days} days back (no list: {windows(now - days, now)} windows "
             "from it)" if args.times_start_days else "")
    return "\n".join([
        "Issue 32: the requests and wall time of the `conversation_times` stream alone (a catalog of it only, "
        "incremental), by its two paths. One fake org per size (bench/server.py), both paths against it in turn. "
        f"This table took {took / 60:.1f} min.", "",
        "- **search**: `POST /v1/customers/search`, queryContext `conversation_time`, 500 a page, in 30-day "
        "windows;",
        "- **per-conversation**: the same connector with the context refused (the fake answers 400 `Unknown "
        "queryContext`). It searches the conversations changed in each window, then asks each one's times, "
        f"`{TIMES}`, one request per conversation;",
        "- **the conversations are made recent**: createdAt, updatedAt and modifiedAt spread evenly from 365 to 3 "
        "days before the run, as `recent()` of integration_tests/test_conversation_times.py does (the fake's own "
        "span older years). Each conversation has 0 to 3 time records, created up to a day after it, so all are "
        "within search's two years;",
        "- **first sync**: no state and **no start_date** (the default). It lists the conversations once, for those "
        "created before search's two years (none here), then searches the 24 windows of those 700 days"
        f"{start};",
        "- **later syncs**: from the state of the first sync without start_date, of the same path; "
        "`lookback_window_minutes` at its default, 10;",
        f"- **{changed:.0%} changed**: {changed:.0%} of the conversations updated, and as many new ones created. The "
        "new ones' time records fall in the 24 hours after their creation. So the changes are stamped 26 to 2 "
        "hours before the sync, and it starts from the previous state with its cursor moved back to 26 hours "
        "before the run, as if the previous sync had ended then. Nothing else in the data is newer than 2 days;",
        f"- **budget**: the fake holds every answer {latency:g} s (requests wait in parallel) and allows {limit} "
        f"requests per fixed {window:g} s window (clock-aligned), with reset headers (epoch), and no search limit "
        "of its own (the connector keeps to 100 searches a minute x its share). The connector runs at "
        f"max_api_usage_percent {percent}: {allowed:g} requests/s. Budget min = requests served / {allowed:g};",
        "- **requests**: every API request of the sync, including the 400 of the refused context, the klasses list "
        "the connector reads at start and the audit log's deletes that the conversations' list checks. Split "
        "into: the conversations' list pages / time searches (`conversation_time`) + conversation searches "
        f"(`conversation`) / `{TIMES}`. Per 100 conversations: requests x 100 / the conversations in the org;",
        "- **target** (search path): requests <= 1 per 100 conversations + the 30-day windows of the period (24 "
        f"for the 700 days search serves, the start_date's, 1 for a later sync); nothing changed: <= {FEW};",
        "- **records**: emitted (expected): every time record in the sync's windows; per conversation, every time "
        "record of each conversation it asks, old ones again included."])


def size_rows(args, python: str, connector: Connector, n: int, allowed: float, notes: list[str]) -> list[list]:
    limit, window, percent, latency = args.times_limit, args.rate_window, args.times_percent, args.times_latency
    server = Server(python, f"times-{n}", {"conversations": n})
    rows = []
    timeout = args.times_timeout or None

    def faults(path: str) -> dict:
        return {"latency": latency, "rate_limit": limit, "rate_window": window, "reset_header": "epoch",
                **PATHS[path]}

    def sync(what: str, path: str, state: dict | None, expected: int, target: int | None,
             config: dict | None = None, tag: str = "") -> Measured:
        server.reset(faults(path))
        log(f"times: {n:,} conversations, {what}, {path} ...")
        r = connector.read(f"{n:,} conversations, {what}, {path}", server, catalog, percent=percent,
                           timeout=timeout, state=state, config=config, tag=f"-times-{n}-{path}{tag}")
        rows.append(times_row(n, what, path, r, expected, target, allowed))
        return r

    try:
        now = dt.datetime.now(dt.timezone.utc)
        server.recent("conversations", stamp(now - dt.timedelta(days=365)), stamp(now - dt.timedelta(days=3)))
        catalog = connector.catalog(server, ["conversation_times"], incremental=True, tag="-times")
        every = server.times()["all"]
        firsts = {}
        for path in PATHS:
            firsts[path] = sync("first sync", path, None, every, n // 100 + windows(now - SEARCH_REACH, now)
                                if path == "search" else None, tag="-first")
        if args.times_start_days:
            start = (now - dt.timedelta(days=args.times_start_days)).replace(hour=0, minute=0, second=0,
                                                                             microsecond=0)
            for path in PATHS:
                sync(f"first sync, start_date {start:%Y-%m-%d}", path, None, every,
                     n // 100 + windows(start, now) if path == "search" else None,
                     config={"start_date": f"{start:%Y-%m-%d}"}, tag="-start")
        idles = {}
        for path in PATHS:
            idles[path] = sync("nothing changed", path, firsts[path].states, 0, FEW if path == "search" else None,
                               tag="-idle")
        # The changes, stamped in the past: conversations touched 25 h before now, new ones created 26 h before
        # now (their time records up to a day later: 26 to 2 h before now); the syncs start from 26 h before now.
        now = dt.datetime.now(dt.timezone.utc)
        since = now - dt.timedelta(hours=26)
        count = max(1, round(n * args.times_changed))
        touched = server.touch("conversations", count, stamp(since + dt.timedelta(hours=1)), every=max(1, n // count))
        created = server.create("conversations", count, stamp(since + dt.timedelta(minutes=1)))
        new_times = server.times(ids=created)["of"]
        read_again = server.times(ids=touched)["of"]
        late = server.times(start=stamp(now - dt.timedelta(minutes=1)))["between"]
        if late:  # past the connector's cursor end (a minute before its start): read by no sync here
            notes.append(f"{n:,} conversations: {late} time records are newer than a minute before the changed "
                         "syncs (expected none)")
        what = f"{args.times_changed:.0%} changed ({count:,} + {count:,} new, {new_times:,} new time records)"
        for path in PATHS:
            state = moved_back(idles[path].states, stamp(since))
            sync(what, path, state, new_times if path == "search" else new_times + read_again,
                 n // 100 + 1 if path == "search" else None, tag="-changed")
    finally:
        server.stop()
    return rows


def moved_back(states: dict, cursor: str) -> dict:
    """The conversation_times state with its cursor (`createdAt`) at `cursor`: as if the sync had ended then."""
    states = copy.deepcopy(states)
    stream_state = states["conversation_times"]["stream"]["stream_state"]
    if set(stream_state) != {"createdAt"}:
        raise SystemExit(f"times: a state of conversation_times other than {{createdAt}}: {stream_state}")
    stream_state["createdAt"] = cursor
    return states


def times_row(n: int, what: str, path: str, r: Measured, expected: int, target: int | None, allowed: float) -> list:
    stats = r.server
    routes = stats["routes"]
    sent, refused = stats["api_requests"], stats["fake"]["rate_limited"]
    served = sent - refused
    searches = {context: sum(v for k, v in routes.items() if k.startswith(SEARCH) and k.endswith(f"[{context}]"))
                for context in ("conversation_time", "conversation")}
    breakdown = (f"{routes.get(LIST, 0):,} / {searches['conversation_time']:,} + {searches['conversation']:,} / "
                 f"{routes.get(TIMES, 0):,}")
    budget = served / allowed
    if r.timed_out:
        result = f"stopped after {r.wall:.0f} s"
    elif r.returncode or r.errors:
        result = f"exit {r.returncode}: " + "; ".join(r.errors)[:200]
    else:
        result = "ok" if r.total == expected else f"{r.total - expected:+,} records vs expected"
    return [f"{n:,}", what, path, f"{sent:,}", breakdown, f"{sent * 100 / n:.2f}",
            "" if target is None else f"{target:,}", "-" if target is None else met(sent <= target),
            f"{r.total:,} ({expected:,})", f1(r.wall), f1(budget), f"{r.wall / budget:.2f}" if budget else "",
            stats.get("in_flight_max", "?"), refused, result]
