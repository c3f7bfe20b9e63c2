"""Search's limits as Faults options: the result window and its four answers, timed-out pages, index lag."""

import json
from datetime import timedelta

import pytest

from integration_tests.fake_kustomer import Dataset, FakeKustomer, Faults
from integration_tests.fake_kustomer.tests.common import MINUTE, NOW, SMALL, call, get, search, search_all

FRESH = "2026-10-14T00:00:00.000Z"  # after every generated record's updatedAt: the created notes are all there is
BODY = {"queryContext": "note", "and": [{"note_updated_at": {"gte": FRESH}}], "sort": [{"note_updated_at": "asc"}]}
NOT_FOUND = {"errors": [{"status": 404, "code": "notfound", "title": "Not Found"}]}


def notes(count=1500, **faults):
    """A server whose BODY search matches exactly `count` notes, all stamped FRESH."""
    fake = FakeKustomer(Dataset(SMALL), now=NOW, faults=Faults(**faults))
    fake.dataset.create("notes", count, at=FRESH)
    return fake


@pytest.fixture(scope="module")
def plain():
    return notes()


def test_no_window_by_default_pages_past_it_are_served_and_the_page_cap_still_applies(plain):
    status, page = search(plain, BODY, page=3, page_size=500)
    assert status == 200 and len(page["data"]) == 500 and page["links"]["next"] is None
    capped = FakeKustomer(plain.dataset, now=NOW, search_page_cap=2)
    assert search(capped, BODY, page=3, page_size=500)[0] == 400  # the 100-page reading, lowered
    capped.faults = Faults(search_window=10_000)  # a window replaces the page cap
    assert search(capped, BODY, page=3, page_size=500)[0] == 200


@pytest.mark.parametrize("answer, status, body", [
    ("404", 404, NOT_FOUND),
    ("400", 400, {"errors": [{"status": 400, "code": "illegal_argument_exception", "title": "Bad Request",
                              "detail": "Result window is too large, from + size must be less than or equal to: "
                                        "[1000] but was [1500]. See the scroll api for a more efficient way to "
                                        "request large data sets."}]}),
    ("500", 500, {"errors": [{"status": 500, "code": "internal_server_error", "title": "Internal Server Error"}]}),
])
def test_a_page_past_the_window_is_refused_and_the_last_page_inside_still_links_to_it(plain, answer, status, body):
    plain.faults = Faults(search_window=1000, search_window_answer=answer)
    first, second = search(plain, BODY, page=1, page_size=500), search(plain, BODY, page=2, page_size=500)
    assert [s for s, _ in (first, second)] == [200, 200] and [len(p["data"]) for _, p in (first, second)] == [500] * 2
    assert second[1]["links"]["next"] == "/v1/customers/search?page=3&pageSize=500"  # 1,000 + 500 > 1,000
    assert search(plain, BODY, page=3, page_size=500) == (status, body)
    assert search(plain, BODY, page=4, page_size=500)[0] == status  # and every later page
    assert search(plain, BODY, page=3, page_size=500, archive=True)[0] == status  # the same index behind both
    if answer == "400":
        assert "page" not in json.dumps(body).lower()  # nothing a client could take for the 100-page cap's 400


def test_silent_pages_past_the_window_are_empty_and_next_links_stop_at_its_last_page(plain):
    plain.faults = Faults(search_window=1000, search_window_answer="silent")
    pages = [search(plain, BODY, page=p, page_size=500) for p in (1, 2, 3, 4)]
    assert [s for s, _ in pages] == [200] * 4
    assert [len(p["data"]) for _, p in pages] == [500, 500, 0, 0]
    assert [p["links"]["next"] for _, p in pages] == ["/v1/customers/search?page=2&pageSize=500", None, None, None]
    assert {(p["meta"]["total"], p["meta"]["totalPages"]) for _, p in pages} == {(1500, 3)}  # still the full count
    assert pages[2][1]["links"]["last"] == "/v1/customers/search?page=3&pageSize=500"
    followed = search_all(plain, BODY, page_size=500)  # a client trusting next links
    assert len(followed) == 1000 and followed == pages[0][1]["data"] + pages[1][1]["data"]


def test_the_window_is_from_plus_size_whatever_the_total_and_with_the_clamped_page_size(plain):
    plain.faults = Faults(search_window=1000, search_window_answer="404")
    # pageSize 300: page 3 ends at 900, page 4 asks for 900 + 300 > 1,000 although 600 more records match.
    assert [search(plain, BODY, page=p, page_size=300)[0] for p in (3, 4)] == [200, 404]
    assert [search(plain, BODY, page=p, page_size=250)[0] for p in (4, 5)] == [200, 404]  # 1,000 exactly is inside
    assert [search(plain, BODY, page=p, page_size=5000)[0] for p in (2, 3)] == [200, 404]  # clamped to 500
    few = notes(10, search_window=1000, search_window_answer="400")  # a window past the end: nothing to refuse
    assert search(few, BODY, page=1, page_size=500)[1]["meta"]["total"] == 10
    assert search(few, BODY, page=2, page_size=500)[0] == 200 and search(few, BODY, page=3, page_size=500)[0] == 400


def test_window_answers_over_serve_carry_the_usual_headers():
    fake = notes(search_window=1000, search_window_answer="500")
    fake.wall = lambda: MINUTE + 30
    reply = call(fake, "POST", "/v1/customers/search?page=3&pageSize=500", BODY)
    assert reply.status == 500 and reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["X-Ratelimit-Remaining"] == "999" and fake.stats.windows[-1].searches == 1


def test_timed_out_pages_hold_the_first_half_of_their_hits_and_the_same_requests_meet_the_same_ones(plain):
    def run(faults, n=40):
        plain.faults = faults
        return [search(plain, BODY, page=1 + p % 3, page_size=7 + p % 2)[1] for p in range(n)]

    whole = run(Faults())
    assert {p["meta"]["timed_out"] for p in whole} == {False}  # as recorded
    drawn = run(Faults(timed_out_rate=0.4, seed=3))
    flags = [p["meta"]["timed_out"] for p in drawn]
    assert 5 <= sum(flags) <= 30
    for got, full, timed_out in zip(drawn, whole, flags):
        size = len(full["data"])  # 7 or 8
        assert got["data"] == (full["data"][:size // 2] if timed_out else full["data"])
        assert (got["meta"] | {"timed_out": False}, got["links"]) == (full["meta"], full["links"])  # all else as is
    assert [p["meta"]["timed_out"] for p in run(Faults(timed_out_rate=0.4, seed=3))] == flags  # reassigning restarts
    assert [p["meta"]["timed_out"] for p in run(Faults(timed_out_rate=0.4, seed=4))] != flags
    assert {p["meta"]["timed_out"] for p in run(Faults(timed_out_rate=1.0))} == {True}


def test_timed_out_draws_leave_the_transport_faults_where_they_were():
    def faults_met(timed_out_rate):
        fake = FakeKustomer(Dataset(SMALL), now=NOW, faults=Faults(error_rate=0.3, seed=5,
                                                                    timed_out_rate=timed_out_rate))
        fake.wall = lambda: MINUTE + 30
        for n in range(60):
            call(fake, "POST", "/v1/customers/search", {"queryContext": "customer"}) if n % 2 else \
                call(fake, "GET", "/v1/tags")
        return [entry.get("fault") for entry in fake.requests_log]

    assert faults_met(0.5) == faults_met(0.0) and any(faults_met(0.0))


def test_index_lag_hides_a_change_until_the_clock_is_that_far_past_its_updated_at():
    fake = FakeKustomer(Dataset(SMALL), now=NOW, faults=Faults(index_lag=30))
    [customer] = fake.dataset.touch("customers", [fake.dataset.resources["customers"][0]["id"]])  # at the clock
    body = {"queryContext": "customer", "and": [{"customer_updated_at": {"gte": "2026-10-14"}}]}

    def found():
        return [r["id"] for r in search_all(fake, body)]

    assert found() == []
    assert get(fake, f"/v1/customers/{customer['id']}")[1]["data"]["attributes"]["updatedAt"] == \
        "2026-10-15T00:00:00.000Z"  # GET sees it at once
    fake.advance(29.999)
    assert found() == []
    assert fake.advance(0.001) == NOW + timedelta(seconds=30)
    assert found() == [customer["id"]]  # exactly index_lag past its updatedAt
    ahead = fake.dataset.touch("customers", [customer["id"]], at=fake.now + timedelta(hours=1))[0]
    assert found() == []  # stamped in the clock's future: seen only index_lag after that
    fake.now += timedelta(hours=1, seconds=30)  # assigning now moves the clock as well
    assert found() == [ahead["id"]]


def test_without_index_lag_even_records_stamped_in_the_clock_s_future_are_searchable():
    fake = FakeKustomer(Dataset(SMALL), now=NOW)
    [customer] = fake.dataset.touch("customers", [fake.dataset.resources["customers"][0]["id"]],
                                    at=NOW + timedelta(days=1))
    body = {"queryContext": "customer", "and": [{"customer_updated_at": {"gte": "2026-10-14"}}]}
    assert [r["id"] for r in search_all(fake, body)] == [customer["id"]]


def test_advance_freezes_a_real_time_clock_first():
    fake = FakeKustomer(Dataset(SMALL))
    before = fake.clock()
    moved = fake.advance(60)
    assert fake.now == moved and timedelta(seconds=60) <= moved - before < timedelta(seconds=70)
    assert fake.clock() == moved and fake.dataset.clock() == moved
