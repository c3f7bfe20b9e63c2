"""The org's rate budget: the sync's share of Kustomer's limits, read from the responses' headers."""

import logging
import math
import threading
import time
from collections import deque
from typing import Any, Optional

LOGGER = logging.getLogger("airbyte")


def reset_at(value: Any, now: float) -> Optional[float]:
    """`x-ratelimit-reset` as an epoch time: Kustomer's docs say epoch seconds, its examples "now + 60s"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 1e9 else now + number


class OrgBudget:
    """Keeps the sync within its share of Kustomer's rate limits.

    Kustomer gives an org one budget a minute, shared by its agents and every API key. Responses carry the limit and
    what is left (`x-ratelimit-limit`, `-remaining`); when it refills (`x-ratelimit-reset`, epoch seconds or seconds
    from now) was never seen on a live response, and may come on a 429 only. Two rules keep the sync to its share,
    `max_api_usage_percent` of the limit:

    - The agents' reserve: while no more than (100 - share)% of the limit is left, whoever used it, requests pause
      until the refill: the reset the API gave, or else the latest the current minute can end (a refill seen in
      `remaining` ends the pause early). Requests in flight count as used. Within a window what is left only falls
      (the sync's own requests are counted down until a response tells); once the latest the window can end has
      passed, `remaining` is taken afresh, so a counter that never falls (a proxy) or several that alternate (pods
      behind a load balancer) cannot hold the sync below its share.
    - Where responses never say when their window ends, also the sync's own requests: at most its share over a
      sliding minute (plus the slowest recent request), which bounds every fixed minute Kustomer may count in, even
      when the refill of `remaining` goes unseen.

    Searches have their own limit of 100 a minute per key, of which the sync takes the same share. A 429 pauses every
    request (only searches, if the org had budget left) until the reset, or for a minute.
    """

    SEARCH_LIMIT, WINDOW = 100, 60.0

    def __init__(self, usage_percent: float, clock=None, sleep=None) -> None:
        self._share = min(max(float(usage_percent), 1.0), 100.0) / 100
        self._clock = clock or (lambda: time.time())
        self._sleep = sleep or (lambda seconds: time.sleep(seconds))  # looked up at call time: tests replace it
        self._lock = threading.Lock()
        self._limit = self._remaining = None  # the org's, as the last responses said (remaining: minus ours since)
        self._seen_remaining = None  # the lowest `remaining` a response gave in the current window
        self._reset_at = None  # the current window's end, where responses say it
        self._resets_given = False  # whether responses other than 429s say it
        self._window_end = None  # where they do not: the latest the current window can end
        self._sent: deque[float] = deque()  # when our requests went out, over the last window
        self._pending: dict[int, float] = {}  # requests in flight: id -> when sent
        self._most_in_flight = 0  # answers can arrive out of order by up to this many requests
        self._durations: deque[float] = deque(maxlen=50)  # how long recent requests took
        self._searches: deque[float] = deque()
        self._paused_until = self._search_paused_until = 0.0
        self._announced_until = 0.0
        self._window = self.WINDOW  # the org limit's window: Kustomer's is a minute, learned if shorter
        self._refilled_at: Optional[float] = None  # when `remaining` was last seen refilled
        self._gaps: deque[float] = deque(maxlen=2)  # the last two windows' lengths, as seen

    def pages_ahead(self) -> int:
        """Requests in flight that keep the sync at its share of the rate limit: the share a second times a
        response's time (the median of the recent ones), plus one."""
        with self._lock:
            durations, limit = sorted(self._durations), self._limit or 2000  # no headers: Kustomer's largest plan
        if not durations:
            return 1
        return math.ceil(limit * self._share / self._window * durations[len(durations) // 2]) + 1

    def acquire_call(self, request: Any) -> None:
        search = request.method == "POST" and request.url.split("?")[0].endswith("/search")
        while True:
            with self._lock:
                now = self._clock()
                wait, why = self._wait(now, search)
                if wait <= 0:
                    if self._remaining is not None:
                        self._remaining -= 1  # until a response tells
                    self._sent.append(now)
                    self._pending[id(request)] = now
                    self._most_in_flight = max(self._most_in_flight, len(self._pending))
                    if search:
                        self._searches.append(now)
                    return
                if now + wait > self._announced_until + 1:  # once per pause, whichever thread meets it first
                    self._announced_until = now + wait
                    LOGGER.info(f"Kustomer rate limit: pausing requests for {wait:.0f} s ({why}).")
            self._sleep(min(wait, 1.0))  # then look again: a response may have shown the refill

    def _wait(self, now: float, search: bool) -> tuple[float, str]:
        """Seconds to wait before the next request, and why."""
        if self._paused_until > now:
            return self._paused_until - now, "Kustomer answered 429 Too Many Requests"
        margin = max(self._durations, default=0.0)  # a request counts where it is served, up to this much later
        while self._sent and self._sent[0] <= now - self._window - margin:
            self._sent.popleft()
        if self._pending and min(self._pending.values()) < now - 600:  # failed without a response
            self._pending = {key: at for key, at in self._pending.items() if at >= now - 600}
        if self._limit:
            share = max(1, int(self._limit * self._share))
            if not self._resets_given and len(self._sent) >= share:
                why = f"{len(self._sent)} requests in the last {self._window:.0f} s, the sync's share is {share}"
                return self._sent[0] + self._window + margin - now, why
            ends = self._reset_at if self._resets_given else self._window_end
            ends = ends if ends is not None and ends > now else None
            reserve = self._limit * (1 - self._share)
            if ends is not None and self._remaining is not None and self._remaining <= reserve:
                kept = f"{100 - self._share * 100:.0f}% kept for agents" if reserve else "none left"
                return ends - now, f"{self._remaining} of the org's {self._limit} requests left, {kept}"
        if search:
            if self._search_paused_until > now:
                return self._search_paused_until - now, "Kustomer limits searches to 100 a minute"
            while self._searches and self._searches[0] <= now - self.WINDOW - margin:
                self._searches.popleft()
            if len(self._searches) >= max(1, int(self.SEARCH_LIMIT * self._share)):
                return self._searches[0] + self.WINDOW + margin - now, f"{len(self._searches)} searches in the last minute"
        return 0.0, ""

    @property
    def window(self) -> float:
        """Seconds over which the org's limit counts (a minute, unless responses showed a shorter window)."""
        return self._window

    def _learn_window(self, gap: float, exact: bool = False) -> None:
        """A window shorter than a minute: from two reset headers in a row (`exact`), else once two refills in a row
        agree. A gap that spans idle windows is longer, so only a shorter window is ever learned."""
        self._gaps.append(gap)
        shortest = gap if exact else min(self._gaps)
        if (exact or len(self._gaps) == 2 and max(self._gaps) <= shortest * 1.2) and 1 <= round(shortest) < self._window:
            self._window = float(round(shortest))
            LOGGER.info(f"Kustomer's rate limit counts over {self._window:.0f} s windows here, not a minute.")

    def update_from_response(self, request: Any, response: Any) -> None:
        headers = getattr(response, "headers", None) or {}
        status = getattr(response, "status_code", None)
        with self._lock:
            now = self._clock()
            sent_at = self._pending.pop(id(request), None)
            if sent_at is not None:
                self._durations.append(now - sent_at)
            reset = reset_at(headers.get("x-ratelimit-reset"), now)
            try:
                limit, remaining = int(headers["x-ratelimit-limit"]), int(headers["x-ratelimit-remaining"])
            except (KeyError, ValueError):
                limit = remaining = None
            if reset is not None and (self._reset_at is None or reset > self._reset_at + 0.5):  # a new window
                if self._reset_at is not None and status != 429:
                    self._learn_window(reset - self._reset_at, exact=True)
                self._reset_at, self._seen_remaining = reset, None
            self._resets_given |= reset is not None and status != 429
            if limit is not None and status != 429:
                # Without a reset header, a refill shows as `remaining` going up by more than reordering explains.
                refilled = (reset is None and self._seen_remaining is not None
                            and remaining > self._seen_remaining + self._most_in_flight + 1)
                if refilled:
                    if self._refilled_at is not None:
                        self._learn_window(now - self._refilled_at)
                    self._refilled_at = now
                # Past the latest the window can end, this answer counts in a later one: its `remaining` is taken
                # as it is, even if no refill showed (a counter that does not fall, or several that alternate).
                rolled = reset is None and self._window_end is not None and now >= self._window_end
                if reset is None and (refilled or rolled or self._window_end is None):
                    self._window_end = now + self._window  # the current window began by now, so it ends by then
                if refilled or rolled or self._seen_remaining is None:
                    self._seen_remaining, self._remaining = remaining, remaining - len(self._pending)
                else:  # within a window only others' use lowers what is left; requests in flight already did
                    self._seen_remaining = min(self._seen_remaining, remaining)
                    self._remaining = min(self._remaining, remaining)
                self._limit = limit
            if status == 429:
                ends = self._window_end if self._window_end is not None and self._window_end > now else None
                until = reset if reset is not None else (ends or now + self._window)
                if remaining:  # the org has budget left, so it was the search limit
                    self._search_paused_until = max(until, now + 1)
                else:
                    self._paused_until = max(until, now + 1)
                    self._remaining = 0
