"""Search as the API reference describes it: contexts, criteria, sort, pages, the two-year horizon, archive."""

from datetime import timedelta

import pytest

from integration_tests.fake_kustomer import Dataset, FakeKustomer
from integration_tests.fake_kustomer.tests.common import (CUSTOMER_BURST, HORIZON, NOW, STREAM_OF, in_order, instant,
                                                          search, search_all, updated)


@pytest.mark.parametrize("context", STREAM_OF)
def test_search_returns_the_window_sorted_by_updated_at_then_id_across_pages(searchable, context):
    # A bare date and a 6-digit fraction (what singer taps send), both compared as instants.
    lo, hi = "2024-12-01", "2026-09-02T09:26:58.013000Z"  # hi is a 30-customer burst: `lt` must leave it out
    body = {"queryContext": context, "and": [{f"{context}_updated_at": {"gte": lo}},
                                             {f"{context}_updated_at": {"lt": hi}}],
            "sort": [{f"{context}_updated_at": "asc"}]}
    served = search_all(searchable, body, page_size=7)
    expected = in_order(r for r in searchable.dataset.resources[STREAM_OF[context]]
                        if instant(lo) <= updated(r) < instant(hi) and not r["attributes"].get("deleted"))
    assert [r["id"] for r in served] == expected and len(expected) > 10
    assert {r["type"] for r in served} == {context}
    status, first = search(searchable, body, page_size=7)
    assert first["meta"] == {"pageSize": 7, "page": 1, "total": len(expected), "totalPages": -(-len(expected) // 7),
                             "aggregations": {}, "timed_out": False}  # the recorded shape
    assert first["links"]["last"] == f"/v1/customers/search?page={-(-len(expected) // 7)}&pageSize=7"
    assert first["links"]["prev"] is None and first["links"]["next"] == "/v1/customers/search?page=2&pageSize=7"


def test_ties_are_ordered_by_id_and_gt_gte_equals_treat_the_boundary_as_documented(searchable):
    burst = [r for r in searchable.dataset.resources["customers"]
             if r["attributes"]["updatedAt"] == CUSTOMER_BURST and not r["attributes"]["deleted"]]
    assert len(burst) >= 20

    def ids(op, value, **paging):
        body = {"queryContext": "customer", "and": [{"customer_updated_at": {op: value}}],
                "sort": [{"customer_updated_at": "asc"}]}
        return [r["id"] for r in search_all(searchable, body, **paging)]

    assert ids("equals", CUSTOMER_BURST, page_size=4) == sorted(r["id"] for r in burst)  # across 6+ pages
    assert ids("gte", CUSTOMER_BURST)[:len(burst)] == sorted(r["id"] for r in burst)
    assert not set(ids("gt", CUSTOMER_BURST)) & {r["id"] for r in burst}
    # A microsecond before the burst is still `lt` it; the burst itself is `lte` it.
    assert ids("gt", "2026-09-23T13:50:57.342999Z")[:len(burst)] == sorted(r["id"] for r in burst)
    assert set(ids("lte", CUSTOMER_BURST)) >= {r["id"] for r in burst}
    assert not set(ids("lt", CUSTOMER_BURST)) & {r["id"] for r in burst}


def test_descending_sort_keeps_ties_in_id_order_and_no_sort_means_updated_at_ascending(searchable):
    desc = search_all(searchable, {"queryContext": "message", "sort": [{"message_updated_at": "desc"}]}, page_size=9)
    keys = [(-updated(r).timestamp(), r["id"]) for r in desc]
    assert keys == sorted(keys) and len(set(k for k, _ in keys)) < len(keys)  # ties present, ids ascending
    unsorted = search_all(searchable, {"queryContext": "message"}, page_size=9)
    assert [r["id"] for r in unsorted] == in_order(desc)


def test_page_cap_page_cap_links_to_the_next_page_which_is_a_400():
    fake = FakeKustomer(Dataset(), now=NOW, search_page_cap=3)
    body = {"queryContext": "customer", "sort": [{"customer_updated_at": "asc"}]}
    status, last = search(fake, body, page=3, page_size=10)
    total = sum(updated(r) >= HORIZON and not r["attributes"]["deleted"] for r in fake.dataset.resources["customers"])
    assert status == 200 and len(last["data"]) == 10 and total > 40
    assert last["links"]["next"] == "/v1/customers/search?page=4&pageSize=10"
    assert last["meta"]["total"] == total and last["meta"]["totalPages"] == -(-total // 10)  # the full count
    cap_error = {"errors": [{"status": 400, "source": {"parameter": "page"}, "code": "badparam", "title": "Bad Request",
                             "detail": "Search is limited to 3 pages; narrow the query"}]}
    assert search(fake, body, page=4, page_size=10) == (400, cap_error)
    assert search(fake, body, page=4, page_size=10, archive=True) == (400, cap_error)


def test_the_default_cap_is_100_pages(searchable):
    body = {"queryContext": "message"}  # more than 100 messages in the window, so 100 pages of one
    status, page_100 = search(searchable, body, page=100, page_size=1)
    assert status == 200 and page_100["links"]["next"] == "/v1/customers/search?page=101&pageSize=1"
    status, error = search(searchable, body, page=101, page_size=1)
    assert status == 400 and error["errors"][0]["detail"] == "Search is limited to 100 pages; narrow the query"


def test_page_size_defaults_to_100_and_is_clamped_to_500(searchable):
    assert search(searchable, {"queryContext": "message"})[1]["meta"]["pageSize"] == 100
    status, big = search(searchable, {"queryContext": "message"}, page_size=5000)
    assert status == 200 and big["meta"]["pageSize"] == 500 and big["links"]["self"].endswith("pageSize=500")
    assert search(searchable, {"queryContext": "message"}, page_size=0)[0] == 400


def test_deleted_records_only_with_include_deleted(searchable):
    body = {"queryContext": "customer", "and": [{"customer_updated_at": {"gte": "2000-01-01"}}]}
    live = {r["id"] for r in search_all(searchable, body)}
    every = search_all(searchable, body | {"includeDeleted": True})
    deleted = {r["id"] for r in every if r["attributes"]["deleted"]}
    assert deleted and not live & deleted and {r["id"] for r in every} == live | deleted
    assert [r["id"] for r in every] == in_order(every)


@pytest.mark.parametrize("context, stream", [("customer", "customers"), ("note", "notes"), ("kobject", "kobjects")])
def test_search_and_archive_split_every_record_at_two_years_before_the_clock(context, stream):
    fake = FakeKustomer(Dataset(), now=NOW)
    body = {"queryContext": context, "includeDeleted": True}
    at_horizon, just_before = (r["id"] for r in fake.dataset.all(stream)[:2])
    fake.dataset.touch(stream, [at_horizon], at=HORIZON)  # the horizon itself is still searchable
    fake.dataset.touch(stream, [just_before], at=HORIZON - timedelta(milliseconds=1))

    def split():
        recent, old = search_all(fake, body), search_all(fake, body, archive=True)
        return {r["id"] for r in recent}, {r["id"] for r in old}, recent, old

    recent_ids, old_ids, recent, old = split()
    assert at_horizon in recent_ids and just_before in old_ids and not recent_ids & old_ids
    assert recent_ids | old_ids == {r["id"] for r in fake.dataset.all(stream)}
    assert all(updated(r) >= HORIZON for r in recent) and all(updated(r) < HORIZON for r in old)
    _, page = search(fake, body, archive=True, page_size=2)
    assert page["links"]["next"] == "/v1/customers/archive/search?page=2&pageSize=2"
    fake.now = NOW + timedelta(days=365)  # the clock is read per request: a year on, more has aged out
    later_recent, later_old, _, _ = split()
    assert later_recent < recent_ids and later_old > old_ids and later_recent | later_old == recent_ids | old_ids


def test_kobject_contexts_per_klass_and_across_klasses(searchable):
    kobjects = searchable.dataset.kobjects
    window = [{"kobject_updated_at": {"gte": "2020-01-01"}}]
    orders = search_all(searchable, {"queryContext": "kobject_order", "and": window}, page_size=10)
    assert [r["id"] for r in orders] == in_order(r for r in kobjects["order"] if updated(r) >= HORIZON)
    assert {r["type"] for r in orders} == {"kobject.order"}
    every = search_all(searchable, {"queryContext": "kobject", "and": window, "sort": [{"kobject_updated_at": "asc"}]})
    assert [r["id"] for r in every] == in_order(r for rs in kobjects.values() for r in rs if updated(r) >= HORIZON)
    assert {r["type"] for r in every} == {"kobject.order", "kobject.subscription"}
    status, empty = search(searchable, {"queryContext": "kobject_return-request"})
    assert status == 200 and empty["data"] == [] and empty["meta"]["total"] == 0 and empty["links"]["next"] is None
    status, error = search(searchable, {"queryContext": "kobject_no-such-klass"})
    assert status == 400 and "kobject_no-such-klass" in error["errors"][0]["detail"]


@pytest.mark.parametrize("body, named, parameter", [
    ({"queryContext": "customer", "and": [{"customer_colour": {"gte": "2024-01-01"}}]}, "customer_colour",
     "customer_colour"),
    ({"queryContext": "conversation", "and": [{"customer_updated_at": {"gte": "2024-01-01"}}]}, "customer_updated_at",
     "customer_updated_at"),
    ({"queryContext": "kobject_order", "and": [{"kobject_order_updated_at": {"gte": "2024-01-01"}}]},
     "kobject_order_updated_at", "kobject_order_updated_at"),
    ({"queryContext": "customer", "and": [{"customer_updated_at": {"after": "2024-01-01"}}]}, "after",
     "customer_updated_at"),
    ({"queryContext": "customer", "and": [{"customer_updated_at": {"gte": "yesterday"}}]}, "yesterday",
     "customer_updated_at"),
    ({"queryContext": "customer", "and": [{"customer_updated_at": {"gte": "2024-01-01T00:00:00.1234567Z"}}]},
     "2024-01-01T00:00:00.1234567Z", "customer_updated_at"),
    ({"queryContext": "customer", "and": [{"customer_id": {"in": [["nested"]]}}]}, "customer_id", "customer_id"),
    ({"queryContext": "customer", "sort": [{"customer_name": "asc"}]}, "customer_name", "customer_name"),
    ({"queryContext": "customer", "sort": [{"customer_updated_at": "up"}]}, "customer_updated_at",
     "customer_updated_at"),
    ({"queryContext": "user"}, "user", "queryContext"),
    ({"and": []}, "queryContext", "queryContext"),
    (["not", "an", "object"], "JSON object", "body"),
])
def test_bad_searches_are_400_naming_what_is_wrong(searchable, body, named, parameter):
    status, error = search(searchable, body)
    assert status == 400
    [e] = error["errors"]
    # Like the recorded 400: the body attribute at fault is source.parameter, as for a query parameter.
    assert e["status"] == 400 and e["code"] == "badparam" and e["source"] == {"parameter": parameter}
    assert named in e["detail"]


def test_or_and_not_are_ignored_without_failing(searchable):
    plain = {"queryContext": "note", "and": [{"note_updated_at": {"gte": "2025-01-01"}}]}
    noisy = plain | {"or": [{"note_body": {"contains": "refund"}}, {"weird": 1}], "not": {"anything": [1, 2]},
                     "timeZone": "Europe/Paris", "fields": ["body"], "aggs": {}}
    noisy["and"] = plain["and"] + [{"or": [{"note_updated_at": {"lt": "2000-01-01"}}]}]
    assert search_all(searchable, noisy) == search_all(searchable, plain) != []


def test_id_equals_and_in(searchable):
    customers = [r for r in searchable.dataset.resources["customers"] if updated(r) >= HORIZON]
    a, b, c = sorted(customers, key=lambda r: r["id"])[:3]
    both = search_all(searchable, {"queryContext": "customer", "and": [{"customer_id": {"in": [c["id"], a["id"]]}}]})
    assert {r["id"] for r in both} == {a["id"], c["id"]}
    one = search_all(searchable, {"queryContext": "customer", "and": [{"customer_id": {"in": [a["id"], b["id"]]}},
                                                                      {"customer_id": {"equals": b["id"]}}]})
    assert [r["id"] for r in one] == [b["id"]]


def test_search_over_http_logs_the_body(fake, http):
    body = {"queryContext": "conversation", "and": [{"conversation_updated_at": {"gte": "2020-01-01T00:00:00.000000Z"}}],
            "sort": [{"conversation_updated_at": "asc"}]}
    response = http.post(fake.url + "/v1/customers/search?pageSize=500", json=body)
    assert response.status_code == 200 and response.json()["data"][0]["type"] == "conversation"
    assert fake.requests_log[-1] == {"method": "POST", "path": "/v1/customers/search", "query": {"pageSize": "500"},
                                     "authorized": True, "body": body, "status": 200, "at": fake.requests_log[-1]["at"]}
    assert http.get(fake.url + "/v1/customers/search").status_code == 405


def test_the_index_is_rebuilt_only_after_a_mutation(mutable):
    ds = mutable.dataset
    index = ds.index("customers", "updatedAt")
    search(mutable, {"queryContext": "customer"})
    assert ds.index("customers", "updatedAt") is index
    ds.touch("customers", [ds.resources["customers"][0]["id"]])
    assert ds.index("customers", "updatedAt") is not index
