"""OrgBudget: the sync's share of Kustomer's org-wide and search rate limits; Backoff between retries."""

import logging

import pytest
import requests

from source_kustomer.components import Backoff, OrgBudget, reset_at

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
        answer.headers.update({"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(remaining)})
    if reset is not None:
        answer.headers["x-ratelimit-reset"] = str(reset)
    return answer


@pytest.fixture
def clock():
    return Clock()


def test_reset_header_is_read_as_epoch_or_as_seconds_from_now():
    assert reset_at("1800000060", now=1_800_000_000) == 1_800_000_060
    assert reset_at("42", now=1_800_000_000) == 1_800_000_042
    assert reset_at(None, now=1) is None and reset_at("soon", now=1) is None


def test_requests_pause_at_the_agents_reserve_until_the_refill(clock, caplog):
    budget = OrgBudget(API, 50, clock=clock, sleep=clock.sleep)
    budget.acquire_call(request())
    budget.update_from_response(request(), response(limit=1000, remaining=501, reset=int(clock.now) + 40))
    budget.acquire_call(request())  # 501 left: one more is within our half
    assert clock.slept == []
    with caplog.at_level(logging.INFO, logger="airbyte"):
        budget.acquire_call(request())  # 500 left = the agents' half: wait for the refill
    assert clock.slept == [40]
    assert "pausing requests for 40 s" in caplog.text and "50% kept for agents" in caplog.text


def test_full_usage_waits_only_when_nothing_is_left(clock):
    budget = OrgBudget(API, 100, clock=clock, sleep=clock.sleep)
    budget.update_from_response(request(), response(limit=300, remaining=1, reset=int(clock.now) + 10))
    budget.acquire_call(request())
    assert clock.slept == []
    budget.acquire_call(request())
    assert clock.slept == [10]


def test_a_429_pauses_everything_until_its_reset_given_as_seconds(clock):
    budget = OrgBudget(API, 50, clock=clock, sleep=clock.sleep)
    budget.update_from_response(request(), response(status=429, limit=1000, remaining=0, reset=25))
    budget.acquire_call(request())
    assert clock.slept == [25]


def test_a_429_without_headers_pauses_a_minute(clock):
    budget = OrgBudget(API, 50, clock=clock, sleep=clock.sleep)
    budget.update_from_response(request(), response(status=429, limit=None))
    budget.acquire_call(request())
    assert clock.slept == [60]


def test_searches_stay_within_their_share_of_100_a_minute(clock):
    budget = OrgBudget(API, 50, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        budget.acquire_call(request("POST", "/v1/customers/search"))
        clock.now += 0.1
    assert clock.slept == []
    budget.acquire_call(request("GET"))  # lists are not searches
    budget.acquire_call(request("POST", "/v1/customers/search"))
    assert clock.slept == [pytest.approx(55.0)]  # until the first search of the minute leaves the window


def test_a_search_429_with_org_budget_left_pauses_only_searches(clock):
    budget = OrgBudget(API, 50, clock=clock, sleep=clock.sleep)
    budget.update_from_response(request("POST", "/v1/customers/search"), response(429, 1000, 900, int(clock.now) + 30))
    budget.acquire_call(request("GET"))
    assert clock.slept == []
    budget.acquire_call(request("POST", "/v1/customers/search"))
    assert clock.slept == [30]


def test_a_request_to_another_host_is_refused(clock):
    budget = OrgBudget(API, 50, clock=clock, sleep=clock.sleep)
    with pytest.raises(Exception, match="redirected a request to another host"):
        budget.acquire_call(requests.Request("GET", "https://evil.example.com/v1/x").prepare())


def test_backoff_is_exponential_with_jitter_and_bounded():
    backoff = Backoff()
    waits = [backoff.backoff_time(requests.exceptions.ConnectionError(), n) for n in range(1, 12)]
    assert 0.5 <= waits[0] <= 1 and 4 <= waits[3] <= 8 and all(w <= 60 for w in waits)
    assert len({round(backoff.backoff_time(None, 5), 6) for _ in range(20)}) > 1  # jitter
    assert backoff.backoff_time(response(429), 3) < 1  # the budget waits for the refill instead
