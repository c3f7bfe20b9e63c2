"""The fake Kustomer API of integration_tests/fake_kustomer.py, served in its own process for the benchmark.

    python bench/server.py [--port 0] [--sizes '{"customers": 50000}'] [--rate-limit N --rate-window S] [--latency S]

Prints `READY <url>` once the dataset is built and the server listens. Besides the fake's own API it answers a
side channel that the benchmark reads between runs (no authorization, never counted as API traffic):

    GET  /bench/stats   requests and response-body bytes since the last reset, per route (searches also by
                        queryContext: "POST /v1/customers/search [conversation_time]") and status, the most API
                        requests in flight at once (`in_flight_max`), the fake's Stats (429s sent, requests per
                        rate-limit window), and the dataset's record counts and the minimum number of list pages
                        each stream needs
    POST /bench/reset   zero the counters and start a new rate-limit window; a JSON body {"faults": {...}} also
                        replaces the Faults (keyword arguments of fake_kustomer.Faults, e.g. "latency",
                        "reset_header")
    POST /bench/touch   {"stream": "conversations", "count": 10, "at": "<ISO time>"}: that many records change
                        (the first `count` of the list; with "every": k, every k-th record, from the first)
    POST /bench/create  {"stream": "conversations", "count": 10, "at": "<ISO time>"}: that many new records, created
                        and updated at `at` (Dataset.create); a conversation's time records follow from its createdAt
    POST /bench/times   {"from": "<ISO time>", "to": "<ISO time>", "ids": [...]} (each optional): how many conversation
                        time records there are, were created from `from` to `to`, belong to the conversations `ids`
    POST /bench/recent  {"stream": "conversations", "from": "<ISO time>", "to": "<ISO time>"}: every record's
                        createdAt, updatedAt and modifiedAt set to one instant, spread evenly from `from` to `to` in
                        the list's order (as integration_tests/test_conversation_times.py `recent()` does, in one
                        change of the data rather than a touch per record)

Two deliberate differences from `python -m integration_tests.fake_kustomer`, neither of which changes what the API
answers: responses are serialised with orjson when it is installed (compact JSON; the stdlib's json.dumps costs
~1 ms per 100-record page, which would make the server, not the client, the bottleneck of the raw floor), and the
per-request log is cleared as it grows (a full sync makes thousands of requests; the counters above replace it).

`--latency S` (or "latency" in a reset's faults, which replace the command line's) holds every API answer S seconds,
as a real page takes hundreds of milliseconds; each request sleeps in its own thread (ThreadingHTTPServer, outside
the fake's lock), so concurrent requests wait in parallel, not in turn. The side channel above is never delayed.

In flight: an API request counts from the moment the fake starts to serve it (headers and body read) until its answer
is built, the latency above included; not the time to write the answer to the socket. The gauge's maximum since the
last reset starts at the requests in flight at the reset (normally none).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration_tests import fake_kustomer as fk  # noqa: E402  (the fake is imported, never edited)

NO_LIMIT = 10**9  # what "no rate limit" means here: see `main`


class _OrjsonDumps:
    """Stands in for the `json` module inside fake_kustomer: orjson for dumps, the stdlib for everything else."""

    def __init__(self):
        import orjson

        self._orjson = orjson

    def dumps(self, value, **kwargs):
        return self._orjson.dumps(value).decode() if not kwargs else json.dumps(value, **kwargs)

    def __getattr__(self, name):
        return getattr(json, name)


def min_pages(dataset: fk.Dataset) -> dict[str, int]:
    """The fewest GET list pages a full sync of each stream needs at the largest page sizes (100; users and teams
    500): ceil(records / page size), and one page for an empty list. `kobjects` is one list per klass; reading them
    also needs the klasses list, which is the `klasses` stream's own page. Every list of `dataset.resources`, the
    ones the fake makes on first use (the routing lists) included: iterating it makes them."""
    pages = {}
    for stream, records in dataset.resources.items():
        pages[stream] = max(1, math.ceil(len(records) / fk.MAX_PAGE_SIZE.get(stream, fk.DEFAULT_PAGE_SIZE)))
    pages["kobjects"] = sum(max(1, math.ceil(len(r) / fk.DEFAULT_PAGE_SIZE)) for r in dataset.kobjects.values())
    return pages


def record_counts(dataset: fk.Dataset) -> dict[str, int]:
    counts = {stream: len(records) for stream, records in dataset.resources.items()}
    counts["kobjects"] = sum(map(len, dataset.kobjects.values()))
    return counts


_ID = re.compile(r"/[0-9a-f]{24}(?=/|$)")


class BenchFake(fk.FakeKustomer):
    """The fake plus the /bench side channel and byte counting."""

    def __init__(self, *args, **kwargs):
        self._bench_lock = threading.Lock()
        self.bench_in_flight = 0  # API requests being served now: never zeroed, only their maximum is
        self._zero()
        super().__init__(*args, **kwargs)

    def _zero(self) -> None:
        self.bench_bytes = 0
        self.bench_requests = 0
        self.bench_routes: Counter = Counter()
        self.bench_statuses: Counter = Counter()
        self.bench_in_flight_max = self.bench_in_flight

    def serve(self, method, path, query, authorization, body=b"", raw_query=""):
        if path.startswith("/bench/"):
            return self._bench(method, path, body)
        with self._bench_lock:
            self.bench_in_flight += 1
            self.bench_in_flight_max = max(self.bench_in_flight_max, self.bench_in_flight)
        try:
            reply = super().serve(method, path, query, authorization, body, raw_query)
        finally:
            with self._bench_lock:
                self.bench_in_flight -= 1
        sent = 0 if reply.reset else len(reply.body[: reply.cut])
        route = f"{method} {_ID.sub('/<id>', path)}"
        if method == "POST" and path.endswith("/search"):  # searches by queryContext: "POST ... [conversation_time]"
            try:
                route += f" [{json.loads(body or b'{}').get('queryContext')}]"
            except (ValueError, AttributeError):
                route += " [?]"
        with self._bench_lock:
            self.bench_requests += 1
            self.bench_bytes += sent
            self.bench_routes[route] += 1
            self.bench_statuses["reset" if reply.reset else str(reply.status)] += 1
        if len(self.requests_log) > 2000:  # nothing here reads it; a long sync would grow it without bound
            with self._lock:
                self.requests_log.clear()
        return reply

    def _bench(self, method, path, body) -> fk.Reply:
        if method == "POST" and path == "/bench/reset":
            spec = json.loads(body or b"{}")
            if "faults" in spec:
                self.faults = fk.Faults(**spec["faults"])  # also restarts the fault RNG from its seed
            with self._lock:
                self.stats = fk.Stats()
                self.requests_log.clear()
            with self._bench_lock:
                self._zero()
            payload = {"ok": True}
        elif method == "POST" and path == "/bench/touch":  # {"stream": ..., "count": n, "at": iso}: n records change
            spec = json.loads(body or b"{}")
            records = self.dataset.all(spec["stream"])[:: spec.get("every", 1)][: spec["count"]]
            changed = self.dataset.touch(spec["stream"], [r["id"] for r in records], at=spec.get("at"))
            payload = {"ids": [r["id"] for r in changed]}
        elif method == "POST" and path == "/bench/create":  # {"stream": ..., "count": n, "at": iso}: n new records
            spec = json.loads(body or b"{}")
            created = self.dataset.create(spec["stream"], spec["count"], at=spec.get("at"))
            payload = {"ids": [r["id"] for r in created]}
        elif method == "POST" and path == "/bench/times":  # {"from": iso, "to": iso, "ids": [...]}: time records
            spec = json.loads(body or b"{}")
            payload = self._bench_times(spec.get("from"), spec.get("to"), spec.get("ids"))
        elif method == "POST" and path == "/bench/recent":  # {"stream": ..., "from": iso, "to": iso}
            spec = json.loads(body or b"{}")
            payload = {"count": self._bench_recent(spec["stream"], spec["from"], spec["to"])}
        elif method == "GET" and path == "/bench/stats":
            with self._lock:
                stats = {"requests": self.stats.requests, "rate_limited": self.stats.rate_limited,
                         "faults": dict(self.stats.faults), "windows": len(self.stats.windows),
                         "max_per_window": self.stats.max_per_window,
                         "max_searches_per_window": self.stats.max_searches_per_window}
            with self._bench_lock:
                payload = {"api_requests": self.bench_requests, "bytes": self.bench_bytes,
                           "in_flight_max": self.bench_in_flight_max,
                           "routes": dict(self.bench_routes), "statuses": dict(self.bench_statuses), "fake": stats,
                           "faults": {"rate_limit": self.faults.rate_limit, "rate_window": self.faults.rate_window,
                                      "search_rate_limit": self.faults.search_rate_limit},
                           "records": record_counts(self.dataset), "min_pages": min_pages(self.dataset)}
        else:
            return fk.Reply(404, {"Content-Type": fk.JSON_TYPE}, b'{"errors":[{"status":404}]}')
        return fk.Reply(200, {"Content-Type": fk.JSON_TYPE}, json.dumps(payload).encode())

    def _bench_times(self, start: str | None, end: str | None, ids: list[str] | None) -> dict:
        """How many conversation time records there are ("all"), created from `start` to `end` inclusive
        ("between", when given), and of the conversations `ids` ("of", when given): what a sync of
        conversation_times should read."""
        with self.dataset.lock:
            every = self.dataset.all_conversation_times()
            payload = {"all": len(every)}
            if start or end:
                low, high = fk.parse_stamp(start or "1970-01-01"), fk.parse_stamp(end or "9999-12-31")
                payload["between"] = sum(low <= fk.parse_stamp(t["attributes"]["createdAt"]) <= high for t in every)
            if ids is not None:
                wanted = set(ids)
                payload["of"] = sum(t["relationships"]["conversation"]["data"]["id"] in wanted for t in every)
        return payload

    def _bench_recent(self, stream: str, start: str, end: str) -> int:
        """Every record of `stream` created (and last updated) at one instant, spread evenly from `start` to `end`
        in the list's order: what `recent()` of integration_tests/test_conversation_times.py does to some
        conversations (createdAt set, then a touch at the same time), for all of them in one change of the data.
        Each record gets a new attributes dict, as the fake's own changes do; the version moves once, so search's
        indexes and the conversations' time records are made again from the new createdAt."""
        first, last = fk.parse_stamp(start) // 1000, fk.parse_stamp(end) // 1000  # epoch ms
        with self.dataset.lock:
            records = self.dataset.all(stream)
            step = (last - first) / max(1, len(records) - 1)
            for n, record in enumerate(records):
                at = fk.iso(round(first + n * step))
                attrs = record["attributes"]
                record["attributes"] = attrs | {"createdAt": at, "updatedAt": at, "modifiedAt": at} | (
                    {"rev": attrs["rev"] + 1} if "rev" in attrs else {})
            self.dataset.version += 1
        return len(records)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed on the READY line)")
    parser.add_argument("--sizes", default="{}", help="JSON object of Dataset sizes; unnamed streams keep defaults")
    parser.add_argument("--seed", type=int, default=7)
    # The fake always sends x-ratelimit-* headers; with rate_limit None they announce 1,000 a minute, which the
    # connector (rightly) obeys. "No rate limit" here is therefore a limit nothing reaches.
    parser.add_argument("--rate-limit", type=int, default=NO_LIMIT)
    parser.add_argument("--rate-window", type=float, default=60.0)
    parser.add_argument("--search-rate-limit", type=int)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every API answer (in parallel)")
    parser.add_argument("--stdlib-json", action="store_true", help="serialise with json.dumps like the plain fake")
    args = parser.parse_args(argv)

    if not args.stdlib_json:
        try:
            fk.json = _OrjsonDumps()
        except ImportError:
            print("orjson not installed: serving with the stdlib json", file=sys.stderr)
    faults = fk.Faults(rate_limit=args.rate_limit, rate_window=args.rate_window,
                       search_rate_limit=args.search_rate_limit, latency=args.latency)
    dataset = fk.Dataset(json.loads(args.sizes), seed=args.seed)
    dataset.resources.settle()  # the lists the fake makes on first use: now, not inside the first measured sync
    fake = BenchFake(dataset, host=args.host, port=args.port, faults=faults).start()
    print(f"READY {fake.url} {json.dumps(record_counts(dataset))}", flush=True)
    fake.serve_until_interrupted()


if __name__ == "__main__":
    main()
