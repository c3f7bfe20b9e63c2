"""components/search.py: a search window read exactly whatever Kustomer answers at the limits of its search (the
result window answered as 404, 400, 500 or a silent end; timed-out pages; ties), against a mocked search that
evaluates the query as Kustomer's does: `<ctx>_updated_at` between gte and lte, ascending, page by page."""

from datetime import datetime, timedelta, timezone

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read
from airbyte_cdk.test.state_builder import StateBuilder

from source_kustomer import SourceKustomer
from source_kustomer.components.timestamps import kustomer_timestamp, to_utc
from unit_tests.conftest import API, CONFIG, LOOKBACK, resource

ES_400 = {"errors": [{"status": 400, "code": "badparam", "title": "Bad Request", "detail": "Result window is too large, "
                      "from + size must be less than or equal to: [1000] but was [1500]."}]}


class Search:
    """Kustomer's search over `records`, answering past `window` results as `answer` says; `timed_out` pages (by
    request number) answer half their hits with `meta.timed_out: true`."""

    def __init__(self, records, window=10_000, answer="404", timed_out=()):
        self.records = sorted(records, key=lambda r: (r["attributes"]["updatedAt"], r["id"]))
        self.window, self.answer, self.timed_out, self.asked = window, answer, set(timed_out), []

    def __call__(self, request, context):
        body = request.json()
        low, high = (to_utc(bound[op]) for bound, op in zip(
            (c["customer_updated_at"] for c in body["and"]), ("gte", "lte")))
        page, size = int(request.qs["page"][0]), int(request.qs["pagesize"][0])
        self.asked.append((page, size, body["and"][0]["customer_updated_at"]["gte"]))
        hits = [r for r in self.records if low <= to_utc(r["attributes"]["updatedAt"]) <= high]
        meta = {"page": page, "pageSize": size, "total": len(hits), "timed_out": False}
        if page * size > self.window:
            if self.answer == "silent":
                return {"meta": meta, "links": {"next": None}, "data": []}
            context.status_code = {"404": 404, "400": 400, "500": 500}[self.answer]
            return ES_400 if self.answer == "400" else {"errors": [{"status": context.status_code, "title": "Error"}]}
        data = hits[(page - 1) * size:page * size]
        more = page * size < len(hits) and not (self.answer == "silent" and (page + 1) * size > self.window)
        if len(self.asked) in self.timed_out:
            data, meta = data[:len(data) // 2], {**meta, "timed_out": True}
        return {"meta": meta, "links": {"next": f"/v1/customers/search?page={page + 1}&pageSize={size}" if more else None},
                "data": data}


NOW = datetime.now(timezone.utc).replace(microsecond=0)
START = NOW - timedelta(days=10)  # a recent start date: the first sync searches, in one 30-day window


def customers(count, at=None, first=1):
    """`count` customers, a second apart from START + 1 h (or all at `at`)."""
    return [resource("customer", n, updatedAt=at or kustomer_timestamp(START + timedelta(hours=1, seconds=n)))
            for n in range(first, first + count)]


@pytest.fixture
def no_waiting(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda seconds: None)


def sync(api, search, state=None):
    api.post(f"{API}/customers/search", json=search)
    api.get(f"{API}/audit-logs", json={"data": [], "links": {"next": None}})
    config = {**CONFIG, "start_date": START.strftime("%Y-%m-%d")}
    catalog = CatalogBuilder().with_stream("customers", SyncMode.incremental).build()
    state = StateBuilder().with_stream_state("customers", state).build() if state else None
    return read(SourceKustomer(catalog, config, state), config, catalog, state, expecting_exception=True)


def ids(output):
    return [m.record.data["id"] for m in output.records if not m.record.data.get("deleted")]


@pytest.mark.parametrize("answer", ["404", "400", "500", "silent"])
def test_past_the_result_window_every_record_is_read_once_whatever_kustomer_answers(api, no_waiting, answer):
    """1,300 customers in one window, a result window of 1,000 (page 3 of 500 crosses it): Kustomer's answer there
    (a 404, Elasticsearch's 400 without the word "page", a 500, or a silent end before `meta.total`) is taken as the
    cap, and the query goes on from the last updatedAt read."""
    search = Search(customers(1_300), window=1_000, answer=answer)
    output = sync(api, search)
    assert not output.errors, output.errors
    assert sorted(ids(output)) == sorted(r["id"] for r in search.records)  # every one, none twice
    assert len({gte for _, _, gte in search.asked}) >= 2  # it went on from a later updatedAt


def test_a_query_never_asks_past_ten_thousand_results(api):
    """12,000 customers in one window: 20 pages of 500, then the query goes on from the last updatedAt, so no page
    asks past the 10,000th result (where Kustomer's answer is unknown)."""
    search = Search(customers(12_000))
    output = sync(api, search)
    assert not output.errors and sorted(ids(output)) == sorted(r["id"] for r in search.records)
    assert max(page * size for page, size, _ in search.asked) <= 10_000
    assert len({gte for _, _, gte in search.asked}) == 2


def test_records_sharing_the_updated_at_a_query_goes_on_from_are_emitted_once(api, no_waiting):
    """600 customers share the updatedAt where the window's cap falls: read again by the next query, emitted once."""
    tie = kustomer_timestamp(START + timedelta(hours=2))
    search = Search(customers(700) + customers(600, at=tie, first=701) + customers(100, first=1301), window=1_000)
    output = sync(api, search)
    assert not output.errors and sorted(ids(output)) == sorted(r["id"] for r in search.records)


def test_more_records_on_one_updated_at_than_a_query_returns_fail_the_stream_naming_it(api, no_waiting):
    tie = kustomer_timestamp(START + timedelta(hours=2))
    output = sync(api, Search(customers(1_200, at=tie), window=1_000))
    errors = [e.trace.error.message for e in output.errors]
    assert any("customers" in error and tie in error for error in errors), errors


def test_a_timed_out_page_is_asked_again_never_taken_as_complete(api, no_waiting):
    search = Search(customers(1_600), timed_out={2, 4})  # the second and the fourth request time out
    output = sync(api, search)
    assert not output.errors and sorted(ids(output)) == sorted(r["id"] for r in search.records)
    assert len(search.asked) == 4 + 2


def test_a_page_that_stays_timed_out_fails_the_stream_as_transient_and_keeps_its_state(api, no_waiting):
    since = kustomer_timestamp(START)
    output = sync(api, Search(customers(800), timed_out=range(1, 100)), state={"updatedAt": since})
    assert any(e.trace.error.failure_type.value == "transient_error" and "timing out" in e.trace.error.message
               for e in output.errors), output.errors
    assert all(m.state.stream.stream_state.updatedAt <= since for m in output.state_messages)


def test_incremental_searches_start_a_look_back_before_the_state_and_the_state_never_goes_back(api):
    since = NOW - timedelta(days=2)
    search = Search(customers(5, at=kustomer_timestamp(since - timedelta(minutes=3))) + customers(5, first=6))
    output = sync(api, search, state={"updatedAt": kustomer_timestamp(since)})
    assert not output.errors
    assert min(gte for _, _, gte in search.asked)[:19] == kustomer_timestamp(since - LOOKBACK)[:19]
    assert len([i for i in ids(output) if int(i, 16) <= 5]) == 5  # indexed late, inside the look-back: read
    states = [m.state.stream.stream_state.updatedAt for m in output.state_messages]
    assert all(s >= kustomer_timestamp(since)[:19] for s in states) and states == sorted(states)
