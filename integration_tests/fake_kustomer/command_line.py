"""`python -m integration_tests.fake_kustomer`: serve a fake Kustomer API until Ctrl-C (the options: --help, or the
package docstring)."""

from __future__ import annotations

import argparse

from .data import Dataset
from .faults import CONTEXT_REFUSALS, REMAINING_FORMS, RESET_HEADERS, SEARCH_WINDOW_ANSWERS, WINDOW_STARTS, Faults
from .server import FakeKustomer
from .shapes import scaled_sizes
from .wire import API_KEY


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m integration_tests.fake_kustomer",
                                     description="Serve a fake Kustomer API until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8585)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the record counts of the big streams")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered with a fault")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every answer")
    parser.add_argument("--rate-limit", type=int, help="requests per window before 429s (default: not enforced)")
    parser.add_argument("--rate-window", type=float, default=60.0, help="seconds per rate-limit window")
    parser.add_argument("--window-start", choices=WINDOW_STARTS, default="clock",
                        help="clock: fixed windows of the clock (default); request: opened by the first request")
    parser.add_argument("--others-per-window", type=int, default=0,
                        help="requests of the org's other users counted into each window")
    parser.add_argument("--reset-header", choices=RESET_HEADERS, default="none",
                        help="X-Ratelimit-Reset: never (default, as recorded), epoch or delta on every response, "
                             "or epoch on 429s only")
    parser.add_argument("--remaining", choices=REMAINING_FORMS, default="counted",
                        help="X-Ratelimit-Remaining: counted (default), constant (limit - 1 always) or alternating "
                             "(two pods' counters in turn)")
    parser.add_argument("--forbidden", default="", help="comma-separated lists the key lacks the role for")
    parser.add_argument("--refusal-status", type=int, choices=(401, 403), default=401,
                        help="how --forbidden lists are refused (default 401, like a bad key)")
    parser.add_argument("--missing", default="", help="comma-separated lists answered 404 notfound")
    parser.add_argument("--search-window", type=int,
                        help="search's result window in records, e.g. 10000: a page with page * pageSize beyond it "
                             "is refused (default: none, only the 100-page cap)")
    parser.add_argument("--search-window-answer", choices=SEARCH_WINDOW_ANSWERS, default="404",
                        help="how a page past --search-window is answered (default 404)")
    parser.add_argument("--timed-out-rate", type=float, default=0.0,
                        help="share of search pages answered with meta.timed_out true and half their records")
    parser.add_argument("--index-lag", type=float, default=0.0,
                        help="seconds after its updatedAt before search sees a change")
    parser.add_argument("--refuse-contexts", default="",
                        help="comma-separated queryContexts search refuses, e.g. conversation_time")
    parser.add_argument("--refuse-context-status", type=int, choices=CONTEXT_REFUSALS, default=401,
                        help="how --refuse-contexts are refused (default 401, like a bad key)")
    args = parser.parse_args(argv)
    names = {name: [n for n in getattr(args, name).split(",") if n]
             for name in ("forbidden", "missing", "refuse_contexts")}
    try:  # an unknown list name is a usage error, not a traceback
        faults = Faults(error_rate=args.error_rate, latency=args.latency, rate_limit=args.rate_limit,
                        rate_window=args.rate_window, window_start=args.window_start,
                        others_per_window=args.others_per_window, reset_header=args.reset_header,
                        remaining=args.remaining, refusal_status=args.refusal_status,
                        search_window=args.search_window, search_window_answer=args.search_window_answer,
                        timed_out_rate=args.timed_out_rate, index_lag=args.index_lag,
                        refuse_context_status=args.refuse_context_status, **names)
    except ValueError as error:
        parser.error(str(error))
    fake = FakeKustomer(Dataset(scaled_sizes(args.scale), seed=args.seed), host=args.host, port=args.port,
                        faults=faults).start()
    print(f"fake Kustomer API at {fake.url} (api key: {API_KEY})", flush=True)
    fake.serve_until_interrupted()
