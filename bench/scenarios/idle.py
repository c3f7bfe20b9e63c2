"""Scenario `idle`: incremental syncs after a first one, when nothing or little changed (see bench/README.md)."""

from __future__ import annotations

import datetime as dt
import json

from bench.common import log
from bench.harness import Connector, Server
from bench.report import f1, table
from integration_tests.cli import stamps  # stdlib only
from integration_tests.fake_kustomer import DEFAULT_SIZES


def run(args, python: str, connector: Connector, report: dict) -> None:
    """Incremental syncs after a first one, at two org sizes (the data streams x1 and x10 of the fake's defaults;
    users, teams, tags and the other configuration lists keep theirs): nothing changed, then 10 conversations."""
    data = ("customers", "companies", "conversations", "messages", "notes", "audit-logs", "kobject.order",
            "kobject.subscription")
    rows = []
    for scale in (1, 10):
        server = Server(python, f"idle-x{scale}", {name: DEFAULT_SIZES[name] * scale for name in data})
        try:
            catalog = connector.catalog(server, None, incremental=True)
            streams = len(json.loads(catalog.read_text())["streams"])
            server.reset()
            log(f"idle: x{scale}, first incremental sync ...")
            first = connector.read(f"x{scale} first", server, catalog, tag=f"-idle{scale}-first")
            runs = [("first incremental sync", first)]
            server.reset()
            log(f"idle: x{scale}, nothing changed ...")
            runs.append(("nothing changed", connector.read(f"x{scale} idle", server, catalog, state=first.states,
                                                           tag=f"-idle{scale}-idle")))
            end = max(stamp for state in runs[-1][1].states.values() for stamp in stamps(state["stream"]["stream_state"]))
            at = (dt.datetime.fromisoformat(end.replace("Z", "+00:00")) + dt.timedelta(milliseconds=1))
            server.touch("conversations", 10, at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z")
            server.reset()
            log(f"idle: x{scale}, 10 conversations changed ...")
            runs.append(("10 conversations changed", connector.read(f"x{scale} changed", server, catalog,
                                                                    state=runs[-1][1].states, tag=f"-idle{scale}-10")))
        finally:
            server.stop()
        for what, r in runs:
            routes = r.server["routes"]
            times = (f"{routes.get('GET /v1/conversations/<id>/times', 0):,} + "
                     f"{routes.get('POST /v1/customers/search [conversation_time]', 0):,}")
            rows.append([f"x{scale}", f"{sum(server.counts.values()):,}", what, streams, f"{r.server['api_requests']:,}",
                         f"{r.server['api_requests'] / streams:.1f}", times,
                         f"{r.total:,}", f1(r.wall), "; ".join(r.errors)[:200] or "ok"])
    report["tables"].append((
        "Incremental syncs after the first, at two org sizes: what a sync costs when nothing or little changed",
        table(["data", "records in the org", "sync", "streams", "requests", "requests per stream",
               "of which conversation times (by conversation + searched)", "records", "wall s", "errors"], rows)))
