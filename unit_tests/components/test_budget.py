"""OrgBudget: the sync's share of Kustomer's org-wide and search rate limits, with and without reset headers; Backoff
between retries."""

import logging
import math

import pytest
import requests

from source_kustomer.components.budget import OrgBudget, reset_at
from source_kustomer.components.errors import KustomerBackoffStrategy as Backoff

API = "https://acme.api.kustomerapp.com"


class Clock:
    def __init__(self):
        self.now, self.slept = 1_800_000_000.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def request(method="GET", path="/v1/customers"):
    return requests.Request(method, API + path).prepare()


def response(status=200, limit=1000, remaining=1000, reset=None):
    answer = requests.Response()
    answer.status_code = status
    if limit is not None:
        answer.headers.update({"X-Ratelimit-Limit": str(limit), "X-Ratelimit-Remaining": str(remaining)})
    if reset is not None:
        answer.headers["X-Ratelimit-Reset"] = str(reset)
    return answer


@pytest.fixture
def clock():
    return Clock()


def exchange(budget, answer, method="GET", path="/v1/customers"):
    """One request through the budget: acquired, then answered."""
    sent = request(method, path)
    budget.acquire_call(sent)
    budget.update_from_response(sent, answer)


def test_reset_header_is_read_as_epoch_or_as_seconds_from_now():
    assert reset_at("1800000060", now=1_800_000_000) == 1_800_000_060
    assert reset_at("42", now=1_800_000_000) == 1_800_000_042
    assert reset_at(None, now=1) is None and reset_at("soon", now=1) is None


def test_requests_pause_at_the_agents_reserve_until_the_refill(clock, caplog):
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    exchange(budget, response(limit=1000, remaining=501, reset=int(clock.now) + 40))
    budget.acquire_call(request())  # 501 left: one more is within our half
    assert clock.slept == []
    with caplog.at_level(logging.INFO, logger="airbyte"):
        budget.acquire_call(request())  # 500 left = the agents' half: wait for the refill
    assert sum(clock.slept) == 40
    assert "pausing requests for 40 s" in caplog.text and "50% kept for agents" in caplog.text


def test_full_usage_waits_only_when_nothing_is_left(clock):
    budget = OrgBudget(100, clock=clock, sleep=clock.sleep)
    exchange(budget, response(limit=300, remaining=1, reset=int(clock.now) + 10))
    budget.acquire_call(request())
    assert clock.slept == []
    budget.acquire_call(request())
    assert sum(clock.slept) == 10


def test_a_429_pauses_everything_until_its_reset_given_as_seconds(clock):
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    exchange(budget, response(status=429, limit=1000, remaining=0, reset=25))
    budget.acquire_call(request())
    assert sum(clock.slept) == 25


def test_a_429_without_headers_pauses_a_minute(clock):
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    exchange(budget, response(status=429, limit=None))
    budget.acquire_call(request())
    assert sum(clock.slept) == 60


def test_searches_stay_within_their_share_of_100_a_minute(clock):
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        budget.acquire_call(request("POST", "/v1/customers/search"))
        clock.now += 0.1
    assert clock.slept == []
    budget.acquire_call(request("GET"))  # lists are not searches
    budget.acquire_call(request("POST", "/v1/customers/search"))
    assert sum(clock.slept) == pytest.approx(55.0)  # until the first search of the minute leaves the window


def test_a_search_429_with_org_budget_left_pauses_only_searches(clock):
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    exchange(budget, response(429, 1000, 900, int(clock.now) + 30), "POST", "/v1/customers/search")
    budget.acquire_call(request("GET"))
    assert clock.slept == []
    budget.acquire_call(request("POST", "/v1/customers/search"))
    assert sum(clock.slept) == 30


def test_without_reset_headers_the_sync_keeps_to_its_share_of_a_sliding_minute(clock):
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    for n in range(20):  # 50% of 40: twenty requests, answered at once
        exchange(budget, response(limit=40, remaining=39 - n))
    assert clock.slept == []
    budget.acquire_call(request())  # the 21st waits for the first to be a minute old
    assert sum(clock.slept) == pytest.approx(60.0)


def test_without_reset_headers_the_agents_reserve_holds_until_the_minute_can_have_ended(clock):
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    exchange(budget, response(limit=1000, remaining=600))  # the window we see began at the latest now
    clock.now += 10
    exchange(budget, response(limit=1000, remaining=500))  # agents used the rest of our half
    budget.acquire_call(request())
    assert sum(clock.slept) == pytest.approx(50.0)  # until a minute after the first answer of that window


def test_a_refill_seen_in_remaining_ends_a_pause_early(clock):
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    exchange(budget, response(limit=1000, remaining=501))
    in_flight = request()
    budget.acquire_call(in_flight)  # 500 left: the next request must wait up to a minute
    refill_at = clock.now + 5

    def sleep(seconds):  # the request in flight is answered 5 s into the pause, from a refilled window
        clock.sleep(seconds)
        if clock.now >= refill_at and in_flight is not None:
            budget.update_from_response(in_flight, response(limit=1000, remaining=999))
            answered.append(clock.now)

    answered = []
    budget._sleep = sleep
    budget.acquire_call(request())
    assert answered and sum(clock.slept) == pytest.approx(5.0, abs=1.0)


@pytest.mark.parametrize("form", ["none", "epoch", "delta"])
@pytest.mark.parametrize("latency", [0.0, 0.3, 1.0])
def test_in_every_fixed_minute_of_the_api_the_sync_stays_within_its_share(clock, form, latency):
    """A simulated Kustomer counting requests in fixed minutes, 40 a minute, answered `latency` seconds after they are
    sent, with reset headers in each form; the sync's share is half. 150 requests: the budget minimum is 7.5 minutes."""
    limit, share, total = 40, 0.5, 150
    budget = OrgBudget(share * 100, clock=clock, sleep=clock.sleep)
    per_minute, refused = {}, 0
    for _ in range(total):
        sent = request()
        budget.acquire_call(sent)
        clock.now += latency
        minute = math.floor(clock.now / 60)
        if per_minute.get(minute, 0) >= limit:
            refused += 1
        per_minute[minute] = per_minute.get(minute, 0) + 1
        end = (minute + 1) * 60
        reset = {"none": None, "epoch": int(end), "delta": math.ceil(end - clock.now)}[form]
        budget.update_from_response(sent, response(limit=limit, remaining=limit - per_minute[minute], reset=reset))
    assert refused == 0
    assert max(per_minute.values()) <= limit * share + limit * 0.05  # at most 22 of 40
    elapsed, minimum = clock.now - 1_800_000_000.0, total / (limit * share / 60)
    assert elapsed <= 1.5 * minimum


def test_backoff_is_exponential_with_jitter_and_bounded():
    backoff = Backoff()
    waits = [backoff.backoff_time(requests.exceptions.ConnectionError(), n) for n in range(1, 12)]
    assert 0.5 <= waits[0] <= 1 and 4 <= waits[3] <= 8 and all(w <= 60 for w in waits)
    assert len({round(backoff.backoff_time(None, 5), 6) for _ in range(20)}) > 1  # jitter
    assert backoff.backoff_time(response(429), 3) < 1  # the budget waits for the refill instead


def test_pages_in_flight_follow_the_share_and_the_response_time(clock):
    """Enough requests in flight to use the sync's share: its rate a second times the median response time, plus one."""
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    assert budget.pages_ahead() == 1  # nothing measured yet
    for _ in range(5):
        sent = request()
        budget.acquire_call(sent)
        clock.now += 0.5
        budget.update_from_response(sent, response(limit=600, remaining=590))
    assert budget.pages_ahead() == math.ceil(600 * 0.5 / 60 * 0.5) + 1 == 4


@pytest.mark.parametrize("headers", ["reset", "refills"])
def test_a_window_shorter_than_a_minute_is_learned(clock, headers):
    """Kustomer counts per minute; a limit that resets every 10 s (a proxy, or a test fake) is learned from two reset
    headers in a row, or from `remaining` refilling at the same interval twice, and then paces over 10 s."""
    budget = OrgBudget(50, clock=clock, sleep=clock.sleep)
    start = clock.now
    for window in range(4):
        for n in range(5):
            clock.now = start + window * 10 + n
            reset = start + (window + 1) * 10 if headers == "reset" else None
            exchange(budget, response(limit=100, remaining=99 - n, reset=reset))
    assert budget.window == 10.0


@pytest.mark.parametrize("counter", ["constant", "alternating"])
def test_a_remaining_that_does_not_fall_with_the_sync_never_holds_it_below_its_share(clock, counter):
    """`remaining` that never falls (a proxy: limit - 1 on every answer), or two counters that alternate (pods behind
    a load balancer, each counting its own requests per clock minute): the budget takes `remaining` afresh once its
    window must have ended, so 200 requests at 50 a minute take about their budget minimum, not one a minute."""
    limit, share, total, latency = 100, 0.5, 200, 0.3
    budget = OrgBudget(share * 100, clock=clock, sleep=clock.sleep)
    counts, per_minute = {}, {}
    for n in range(total):
        sent = request()
        budget.acquire_call(sent)
        clock.now += latency
        minute = math.floor(clock.now / 60)
        per_minute[minute] = per_minute.get(minute, 0) + 1
        pod = (n % 2, minute)
        counts[pod] = counts.get(pod, 0) + 1
        remaining = limit - 1 if counter == "constant" else limit - counts[pod]
        budget.update_from_response(sent, response(limit=limit, remaining=remaining))
    elapsed = clock.now - 1_800_000_000.0
    minimum = (math.ceil(total / (limit * share)) - 1) * 60  # the last minute's requests go at its start
    assert elapsed <= 1.5 * minimum, (elapsed, minimum)
    assert max(per_minute.values()) <= limit * share + 2  # and never more than its share of a minute
