"""Faults: the misbehaviour a test switches on, and the readings of the API the recordings leave open; the canned
answers of the transport faults."""

from __future__ import annotations

from dataclasses import dataclass

from .wire import (CONVERSATION_TIME, HTML_TYPE, JSON_TYPE, LIST_ALIASES, LIST_NAMES, ROUTING_CONTEXTS, SEARCH_CONTEXTS,
                   error_body)

FAULT_KINDS = ("500", "502", "503", "reset", "truncated", "html")
RESET_HEADERS = ("none", "epoch", "delta", "on_429")  # the forms of Faults.reset_header
WINDOW_STARTS = ("clock", "request")  # the forms of Faults.window_start
REMAINING_FORMS = ("counted", "constant", "alternating")  # the forms of Faults.remaining
SEARCH_WINDOW_ANSWERS = ("404", "400", "500", "silent")  # the forms of Faults.search_window_answer
CONTEXT_REFUSALS = (400, 401, 403, 404)  # the statuses of Faults.refuse_context_status
CANNED = {  # fault kind -> (status, content type, body); "reset" and "truncated" are made by the handler
    "500": (500, JSON_TYPE, error_body(500, "internal_server_error", "Internal Server Error")),
    "502": (502, HTML_TYPE, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                            "</h1></center></body></html>"),  # written by the load balancer, not the API: HTML
    "503": (503, JSON_TYPE, error_body(503, "service_unavailable", "Service Unavailable")),
    "html": (200, HTML_TYPE, "<html>maintenance</html>"),
}


def known_context(name) -> bool:
    """Whether `name` is a queryContext the fake searches: customer, ..., kobject, kobject_<klass>, conversation_time,
    work_session, work_item (any klass name: klasses may be created later)."""
    return isinstance(name, str) and (name in SEARCH_CONTEXTS or name in ROUTING_CONTEXTS
                                      or name in ("kobject", CONVERSATION_TIME)
                                      or (name.startswith("kobject_") and len(name) > len("kobject_")))


@dataclass
class Faults:
    """Misbehaviour to switch on, and the readings of the API that the recordings leave open. The faults are off by
    default and the other defaults are what the recorded live responses and Kustomer's docs show (401 for a missing
    role, no reset header, clock-aligned minutes). Assigning `fake.faults` restarts the draws from `seed`; changing a
    field in place (fake.faults.error_rate = 0) keeps the sequence going."""
    error_rate: float = 0.0  # share of /v1 requests answered with a fault drawn from error_kinds instead
    error_kinds: tuple[str, ...] = FAULT_KINDS
    latency: float = 0.0  # seconds added before every answer
    slow_rate: float = 0.0  # share of /v1 requests held slow_seconds before answering: client read timeouts
    slow_seconds: float = 0.0
    rate_limit: int | None = None  # org-wide requests per window (Kustomer: 300-2,000 per 60 s); None: not enforced
    rate_window: float = 60.0  # seconds; tests use short windows
    # "clock": fixed windows [k * rate_window, (k + 1) * rate_window) of epoch time, Kustomer's "per minute";
    # "request": a window opens at the first request after the previous one ended.
    window_start: str = "clock"
    # Requests of the org's other users (agents, apps) counted into each window as it opens: they share the budget.
    others_per_window: int = 0
    search_rate_limit: int | None = None  # searches per window, also within rate_limit (Kustomer: 100 per 60 s)
    # X-Ratelimit-Reset: "none" never (no recorded response has it), "epoch" epoch seconds of the window's end on
    # every response, "delta" seconds from now to it on every response, "on_429" epoch seconds on 429s only.
    reset_header: str = "none"
    # X-Ratelimit-Remaining: "counted" the limit minus what the window counted (0 on a 429); "constant" the
    # X-Ratelimit-Limit minus one on every response, 429s included (a counter that never falls); "alternating" two
    # pods behind a load balancer taking the responses in turn, each showing the limit minus its own count (see
    # rate_limits.py). The 429s are always decided on the org's real count.
    remaining: str = "counted"
    # LIST_NAMES refused as for a key lacking the read role. A list under a folder may also be spelt with "-" for "/"
    # ("routing-statuses"): it is kept as the LIST_NAMES entry ("routing/statuses").
    forbidden: frozenset[str] = frozenset()
    # Kustomer documents a missing role as 401, with the body of a bad key (UNAUTHORIZED); 403: the old reading, a
    # 403 naming the missing role.
    refusal_status: int = 401
    missing: frozenset[str] = frozenset()  # LIST_NAMES answered 404 notfound, e.g. audit-logs on a plan without them
    bad_param: frozenset[str] = frozenset()  # LIST_NAMES answered 400 badparam, naming the request's first parameter
    off_host_next: frozenset[str] = frozenset()  # LIST_NAMES whose links.next is an absolute URL on ELSEWHERE
    redirect: frozenset[str] = frozenset()  # LIST_NAMES answered 302 to the same path on ELSEWHERE
    # Search's result window in records (Elasticsearch's max_result_window; live Kustomer most likely 10,000): a page
    # is served only if from + size <= search_window, from = (page - 1) * pageSize and size = the clamped pageSize.
    # None: no window, only FakeKustomer's search_page_cap (100 pages), which a window replaces when set.
    search_window: int | None = None
    # How a page past the window is answered: "404" notfound (what a fork of the Singer tap saw), "400" with
    # Elasticsearch's "Result window is too large" message, "500" internal error, or "silent": 200 and no records,
    # and no next link from the last page inside the window on (see search.py).
    search_window_answer: str = "404"
    timed_out_rate: float = 0.0  # share of search pages answered with meta.timed_out true and only half their hits
    index_lag: float = 0.0  # seconds after its updatedAt (conversation times: createdAt) that search sees a record
    # queryContexts search refuses (e.g. "conversation_time"), with refuse_context_status: 400 badparam "Unknown
    # queryContext", 401 as a bad key, 403 naming the missing role, 404 notfound.
    refuse_contexts: frozenset[str] = frozenset()
    refuse_context_status: int = 401
    seed: int = 1  # the same seed and the same sequence of requests meet the same faults

    def __post_init__(self):
        # A typo would otherwise switch nothing on, and the test meant to see the fault would pass vacuously.
        for name in ("forbidden", "missing", "bad_param", "off_host_next", "redirect"):
            names = frozenset([getattr(self, name)] if isinstance(getattr(self, name), str) else getattr(self, name))
            names = frozenset(LIST_ALIASES.get(n, n) for n in names)  # "routing-statuses" is "routing/statuses"
            if unknown := names - set(LIST_NAMES):
                raise ValueError(f"{name}: unknown list names {sorted(unknown)} (use {', '.join(LIST_NAMES)})")
            setattr(self, name, names)
        self.error_kinds = tuple([self.error_kinds] if isinstance(self.error_kinds, str) else self.error_kinds)
        if unknown := set(self.error_kinds) - set(FAULT_KINDS):
            raise ValueError(f"error_kinds: unknown {sorted(unknown)} (use {', '.join(FAULT_KINDS)})")
        if self.refusal_status not in (401, 403):
            raise ValueError(f"refusal_status: {self.refusal_status!r} (use 401 or 403)")
        for name, forms in (("reset_header", RESET_HEADERS), ("window_start", WINDOW_STARTS),
                            ("remaining", REMAINING_FORMS), ("search_window_answer", SEARCH_WINDOW_ANSWERS)):
            if getattr(self, name) not in forms:
                raise ValueError(f"{name}: {getattr(self, name)!r} (use {', '.join(forms)})")
        if self.others_per_window < 0:
            raise ValueError(f"others_per_window: {self.others_per_window} (use 0 or more)")
        if self.search_window is not None and (isinstance(self.search_window, bool)
                                               or not isinstance(self.search_window, int) or self.search_window < 1):
            raise ValueError(f"search_window: {self.search_window!r} (use None or a positive number of records)")
        if not 0 <= self.timed_out_rate <= 1:
            raise ValueError(f"timed_out_rate: {self.timed_out_rate} (use 0 to 1)")
        if not self.index_lag >= 0:  # also refuses NaN
            raise ValueError(f"index_lag: {self.index_lag} (use 0 or more seconds)")
        contexts = self.refuse_contexts
        contexts = frozenset([contexts] if isinstance(contexts, str) else contexts)
        if unknown := sorted((c for c in contexts if not known_context(c)), key=str):
            raise ValueError(f"refuse_contexts: unknown queryContexts {unknown} (use {', '.join(SEARCH_CONTEXTS)}, "
                             f"kobject, kobject_<klass>, {CONVERSATION_TIME}, {', '.join(ROUTING_CONTEXTS)})")
        self.refuse_contexts = contexts
        if self.refuse_context_status not in CONTEXT_REFUSALS:
            raise ValueError(f"refuse_context_status: {self.refuse_context_status!r} "
                             f"(use {', '.join(map(str, CONTEXT_REFUSALS))})")
