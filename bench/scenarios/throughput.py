"""Scenario `throughput`: one fake org at the chosen sizes, full-refresh syncs side by side (see bench/README.md).

source-kustomer on every stream; the raw floor, 1 and 2 threads; the Python pipeline without the CDK; source-kustomer
and the Singer tap on the tap's 9 streams; a first incremental sync; then --rounds alternating rounds of
source-kustomer and the floors, and with --profile one more sync under py-spy.
"""

from __future__ import annotations

from bench.clients import SINGER_STREAMS, floor_read, singer_read
from bench.common import MB, log
from bench.harness import Connector, Server, list_streams, min_pages
from bench.measure import Measured
from bench.profiling import profile
from bench.report import f1, n0, ratio, status, table


def run(args, python: str, connector: Connector, report: dict) -> None:
    sizes = {"customers": args.customers, "conversations": args.conversations, "messages": args.messages}
    server = Server(python, "main", sizes)
    try:
        all_streams = list(server.counts)
        catalog_all = connector.catalog(server, list_streams(server))
        catalog_tap = connector.catalog(server, SINGER_STREAMS)
        runs = []
        server.reset()
        log("throughput: source-kustomer, every stream ...")
        runs.append(("all", connector.read("source-kustomer", server, catalog_all)))
        for threads in (1, 2):
            log(f"throughput: raw floor, {threads} thread(s) ...")
            runs.append(("all", floor_read(python, server, threads, all_streams)))
        log("throughput: the Python pipeline without the CDK ...")
        runs.append(("all", floor_read(python, server, 2, all_streams, as_records=True)))
        server.reset()
        log("throughput: source-kustomer, the tap's 9 streams ...")
        runs.append(("tap", connector.read("source-kustomer", server, catalog_tap, tag="-9")))
        log(f"throughput: Singer tap-kustomer (timeout {args.singer_timeout:.0f} s) ...")
        runs.append(("tap", singer_read(server, args.singer_timeout)))
        # The same data as a first incremental sync (no state): the lists again, and the cursor keeps the state.
        server.reset()
        log("throughput: source-kustomer, every stream, first incremental sync ...")
        catalog_incremental = connector.catalog(server, list_streams(server), incremental=True)
        runs.append(("all", connector.read("source-kustomer, first incremental sync", server, catalog_incremental,
                                           tag="-incremental")))
        # Machine noise moves one sync by up to ~10%: the floor target takes the median of alternating rounds.
        rounds = [(runs[0][1], runs[1][1], runs[2][1])]
        for number in range(2, args.rounds + 1):
            server.reset()
            log(f"throughput: round {number} of {args.rounds}, source-kustomer and the raw floors ...")
            again = connector.read("source-kustomer", server, catalog_all, tag=f"-round{number}")
            rounds.append((again, *(floor_read(python, server, threads, all_streams) for threads in (1, 2))))
        report["floor_ratios"] = [ratio(c.rate, max(a.rate, b.rate)) for c, a, b in rounds]
        if args.profile:
            log("profile: source-kustomer under py-spy, every stream ...")
            report["profile"] = profile(connector, server, catalog_all, args.profile_seconds)
        stats_counts = server.counts
    finally:
        server.stop()

    rows = []
    for which, r in runs:
        streams = all_streams if which == "all" else SINGER_STREAMS
        expected = sum(stats_counts[s] for s in streams)
        pages = min_pages(r.server, streams)
        singer = r.label.startswith("Singer")
        records = f"{r.total:,}" + (f" ({sum(r.unique.values()):,} distinct)" if singer else "")
        rows.append([r.label, len(streams), singer_status(r) if singer else status(r, expected),
                     f1(r.wall), f1(r.first_record), records, n0(r.rate), n0(r.steady_rate),
                     f"{r.server['api_requests']:,}", "" if singer else f"{pages:,}",
                     "" if singer else f"{r.server['api_requests'] / pages - 1:+.1%}",
                     f1(r.server["bytes"] / MB), f1(r.peak_rss_mb), f"{r.cpu_s / r.wall:.0%}" if r.wall else ""])
    report["throughput_runs"] = runs
    report["extra_requests"] = [runs[0][1].server["api_requests"] / min_pages(runs[0][1].server, all_streams) - 1,
                                runs[4][1].server["api_requests"] / min_pages(runs[4][1].server, SINGER_STREAMS) - 1]
    report["tables"].append((
        f"Throughput: full refresh, {sizes['customers']:,} customers, {sizes['conversations']:,} conversations, "
        f"{sizes['messages']:,} messages + small streams ({sum(stats_counts.values()):,} records)",
        table(["client", "streams", "result", "wall s", "1st record s", "records", "records/s",
               "records/s after 1st record", "requests", "min pages", "requests over min", "MB received",
               "peak RSS MB", "CPU/wall"], rows)))

    expected = sum(stats_counts[s] for s in all_streams)
    rows = [[number, status(c, expected), f1(c.wall), n0(c.rate), n0(a.rate), n0(b.rate), f"{r:.2f}" if r else "n/a"]
            for number, ((c, a, b), r) in enumerate(zip(rounds, report["floor_ratios"]), 1)]
    report["tables"].append((
        f"Source-kustomer against the raw floor, {len(rounds)} alternating rounds (round 1 is the table above)",
        table(["round", "result", "source-kustomer wall s", "source-kustomer records/s", "floor, 1 thread records/s",
               "floor, 2 threads records/s", "source-kustomer / faster floor"], rows)))

    # Per stream: what the connector and the tap each delivered.
    connector_tap, singer = runs[4][1], runs[5][1]
    rows = [[s, f"{stats_counts[s]:,}", f"{connector_tap.records[s]:,}", f"{singer.records[s]:,}",
             f"{singer.unique[s]:,}"] for s in sorted(SINGER_STREAMS, key=lambda s: stats_counts[s])]
    report["tables"].append((
        "Records per stream, source-kustomer vs the Singer tap (the tap searches, which sees only the last two "
        "years, and re-emits boundary records)",
        table(["stream", "in the data", "source-kustomer", "Singer emitted", "Singer distinct"], rows)))


def singer_status(r: Measured) -> str:
    if r.timed_out:
        stalled = r.wall - (r.last_new or 0)
        if r.last_new is not None and stalled > 5:
            return (f"did not finish (loop on ties in {r.last_stream}: no new record in its last {stalled:.0f} s)")
        return "did not finish in the timeout (still progressing)"
    return "ok" if r.returncode == 0 else f"exit {r.returncode}"
