"""Scenario `scaling`: full syncs at two sizes (--scale-customers): how wall time and peak RSS grow (see
bench/README.md)."""

from __future__ import annotations

from bench.common import log
from bench.harness import Connector, Server, list_streams
from bench.report import f1, n0, status, table


def run(args, python: str, connector: Connector, report: dict) -> None:
    runs = []
    for customers in args.scale_customers:
        server = Server(python, f"scale-{customers}", {"customers": customers})
        try:
            catalog = connector.catalog(server, list_streams(server))
            server.reset()
            log(f"scaling: {customers:,} customers ...")
            result = connector.read(f"{customers:,} customers", server, catalog, tag="-scale")
            runs.append((customers, sum(server.counts.values()), result))
        finally:
            server.stop()
    rows = [[f"{c:,}", f"{n:,}", status(r, n), f1(r.wall), f1(r.first_record), n0(r.rate), n0(r.steady_rate),
             f"{r.server['api_requests']:,}", f1(r.peak_rss_mb)] for c, n, r in runs]
    if len(runs) >= 2:
        (c0, n0_, r0), (c1, n1, r1) = runs[0], runs[-1]
        growth = r1.peak_rss_mb / r0.peak_rss_mb - 1
        report["rss_growth"] = growth
        steady = f"x{r1.steady_rate / r0.steady_rate:.2f}" if r1.steady_rate and r0.steady_rate else ""
        rows.append([f"x{c1 / c0:g}", f"x{n1 / n0_:.1f}", "", f"x{r1.wall / r0.wall:.1f}", "",
                     f"x{r1.rate / r0.rate:.2f}", steady, "", f"{growth:+.1%}"])
    report["scale_runs"] = runs
    report["tables"].append((
        "Scaling: full refresh of every stream at two sizes (customers scaled, the other streams at their small "
        "default sizes)",
        table(["customers", "records", "result", "wall s", "1st record s", "records/s", "records/s after 1st record",
               "requests", "peak RSS MB"], rows)))
