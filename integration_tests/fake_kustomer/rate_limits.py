"""The rate limit: windows, their counts, the X-Ratelimit-* headers and the 429s. FakeKustomer calls `account()` once
per answer of serve(), holding its lock."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from .faults import Faults
from .wire import POD_HEADERS, error_body

DEFAULT_RATE_LIMIT = 1000  # the headers' limit when none is enforced (Kustomer Enterprise: 1,000 per 60 s)
TOO_MANY = error_body(429, "too_many_requests", "Too Many Requests", "Rate limit exceeded")


@dataclass
class Window:
    """One rate-limit window: fixed on the clock, or opened by the first request after the previous one ended (see
    Faults.window_start). Only windows that saw a request are listed."""
    start: float  # epoch seconds
    served: int = 0  # our requests counted against rate_limit
    searches: int = 0  # of which searches, counted against search_rate_limit
    others: int = 0  # other users' requests (Faults.others_per_window): rate_limit leaves served <= limit - others
    # Faults.remaining "alternating": what each of the two pods counted of `served` (the first pod also has the
    # `others`).
    pods: list[int] = field(default_factory=lambda: [0, 0])


@dataclass
class Stats:
    """What the server did over HTTP (handle() called directly counts nowhere). Replace with Stats() to start over;
    that also opens a new rate-limit window (a clock-aligned one keeps its end but forgets what it counted)."""
    requests: int = 0  # every HTTP request received
    faults: Counter = field(default_factory=Counter)  # fault kind -> times answered with it
    slow: int = 0  # requests held slow_seconds
    rate_limited: int = 0  # 429s sent
    windows: list[Window] = field(default_factory=list)  # the last one may still be open
    in_flight: int = 0  # HTTP requests being answered now
    most_in_flight: int = 0  # the most at once
    turns: int = 0  # answers given the rate-limit headers: with Faults.remaining "alternating", turns % 2 is the pod

    @property
    def max_per_window(self) -> int:
        return max((w.served for w in self.windows), default=0)

    @property
    def max_searches_per_window(self) -> int:
        return max((w.searches for w in self.windows), default=0)


def account(stats: Stats, faults: Faults, now: float, counted: bool, search: bool) -> tuple[dict[str, str], bool]:
    """(X-Ratelimit-* and pod headers, refused) for a request at `now` (epoch seconds), counted in its window when
    `counted` (an authorized /v1 request) and within the limits. A refused request (a 429) is not counted.

    X-Ratelimit-Remaining (Faults.remaining): "counted" is the limit minus the window's others and served, 0 on a 429.
    "constant" is X-Ratelimit-Limit minus one on every answer, 429s included. "alternating": a load balancer gives
    the answers to two pods in turn (every answer with these headers takes a turn, counted or not: Stats.turns), each
    pod counts the requests it served in the window and shows the limit minus its own count, 429s included; the
    org's other users' requests (others_per_window) all went through the first pod. Alone, with no others, a client
    sees 999, 999, 998, 998, ...: half the real fall. With others_per_window = N the value goes up and down by about
    N from one answer to the next (1000 - N - 1, 999, 1000 - N - 2, 998, ...); uncounted answers that keep landing
    on the same pod (every other one a 401, say) unbalance the pods too."""
    windows, width = stats.windows, faults.rate_window
    if faults.window_start == "clock":
        start = math.floor(now / width) * width  # the same k gives the same float: a plain != is safe
        if not windows or windows[-1].start != start:
            windows.append(Window(start, others=faults.others_per_window))
    elif not windows or now >= windows[-1].start + width:
        windows.append(Window(now, others=faults.others_per_window))
    window = windows[-1]
    limit = DEFAULT_RATE_LIMIT if faults.rate_limit is None else faults.rate_limit
    refused = None  # the limit that refused the request, reported as the 429's X-Ratelimit-Limit
    if counted and faults.rate_limit is not None and window.others + window.served >= faults.rate_limit:
        refused = faults.rate_limit
    elif counted and search and faults.search_rate_limit is not None \
            and window.searches >= faults.search_rate_limit:
        refused = faults.search_rate_limit
    elif counted:
        window.served += 1
        window.searches += search
        window.pods[stats.turns % 2] += 1
    stats.rate_limited += refused is not None
    shown = limit if refused is None else refused
    pod = stats.turns % 2
    stats.turns += 1
    if faults.remaining == "constant":
        left = shown - 1
    elif faults.remaining == "alternating":
        left = max(0, limit - (window.others if pod == 0 else 0) - window.pods[pod])
    else:
        left = 0 if refused is not None else max(0, limit - window.others - window.served)
    headers = {"X-Ratelimit-Limit": str(shown),  # capitalised as recorded
               "X-Ratelimit-Remaining": str(left)} | POD_HEADERS
    end = window.start + width
    # Rounded up: a client that waits until the reset must find the new window open.
    if faults.reset_header == "epoch" or (faults.reset_header == "on_429" and refused is not None):
        headers["X-Ratelimit-Reset"] = str(math.ceil(end))
    elif faults.reset_header == "delta":
        headers["X-Ratelimit-Reset"] = str(math.ceil(end - now))
    return headers, refused is not None
