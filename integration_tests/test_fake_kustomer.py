"""Fast checks that the fake Kustomer server behaves like the API reference says (pagination, auth, errors, data,
search, and the test-only mutations between syncs)."""

import http.client as http_client
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integration_tests.fake_kustomer import (API_KEY, DEFAULT_SIZES, FAULT_KINDS, WRONG_REGION_KEY, Dataset,
                                            FakeKustomer, Faults, main)

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def fake():
    with FakeKustomer() as server:
        yield server


@pytest.fixture()
def http():
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


def fetch_all(http, url, path):
    """Follow links.next (relative paths) to the end, like a connector would."""
    pages, next_path = [], path
    while next_path:
        response = http.get(url + next_path)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_path = pages[-1]["links"]["next"]
    return pages


def test_following_next_links_returns_every_customer_once_in_id_order(fake, http):
    pages = fetch_all(http, fake.url, "/v1/customers")
    ids = [r["id"] for page in pages for r in page["data"]]
    assert len(pages) == 3 and [len(p["data"]) for p in pages] == [100, 100, 50]
    assert len(ids) == len(set(ids)) == DEFAULT_SIZES["customers"]
    assert ids == sorted(ids)
    first, last = pages[0], pages[-1]
    assert first["meta"] == {"pageSize": 100, "page": 1, "total": 250, "totalPages": 3}
    assert first["links"] == {"self": "/v1/customers?page=1&pageSize=100", "first": "/v1/customers?page=1&pageSize=100",
                              "prev": None, "next": "/v1/customers?page=2&pageSize=100"}
    assert last["links"]["prev"] == "/v1/customers?page=2&pageSize=100" and last["links"]["next"] is None


@pytest.mark.parametrize("stream", ["conversations", "messages", "notes", "users", "teams", "tags", "brands",
                                    "shortcuts", "companies", "klasses"])
def test_every_list_endpoint_serves_its_whole_stream(fake, http, stream):
    pages = fetch_all(http, fake.url, f"/v1/{stream}?pageSize=100")
    served = [r for page in pages for r in page["data"]]
    assert served == fake.dataset.resources[stream]
    assert all("total" not in page["meta"] for page in pages)  # only customers report totals


def test_kobjects_per_klass_including_an_empty_one(fake, http):
    orders = [r for p in fetch_all(http, fake.url, "/v1/klasses/order") for r in p["data"]]
    assert len(orders) == 230 and {r["type"] for r in orders} == {"kobject.order"}
    assert orders[0]["relationships"]["klass"] == {"link": {"self": "/v1/klasses/order"},
                                                   "data": {"type": "klass", "id": "order"}}
    assert orders[0]["links"]["self"] == f"/v1/klasses/order/{orders[0]['id']}"
    empty = http.get(fake.url + "/v1/klasses/return-request").json()
    assert empty["data"] == [] and empty["links"]["next"] is None
    assert http.get(fake.url + "/v1/klasses/no-such-klass").status_code == 404


def test_page_size_is_clamped_to_the_endpoint_maximum(fake, http):
    users = http.get(fake.url + "/v1/users", params={"pageSize": 1000}).json()
    assert users["meta"]["pageSize"] == 500 and len(users["data"]) == 500
    assert users["links"]["next"] == "/v1/users?page=2&pageSize=500"
    conversations = http.get(fake.url + "/v1/conversations", params={"pageSize": 500}).json()
    assert conversations["meta"]["pageSize"] == 100 and len(conversations["data"]) == 100


def test_page_past_the_end_is_empty_and_repeated_keys_take_the_first(fake, http):
    past = http.get(fake.url + "/v1/brands?page=7").json()
    assert past["data"] == [] and past["links"]["next"] is None and past["links"]["prev"] == "/v1/brands?page=6&pageSize=100"
    repeated = http.get(fake.url + "/v1/tags?page=2&page=1&pageSize=50&pageSize=7").json()
    assert repeated["meta"] == {"pageSize": 50, "page": 2}


@pytest.mark.parametrize("query", ["pageSize=0", "pageSize=abc", "pageSize=-5", "page=0", "pageSize="])
def test_bad_paging_parameters_are_400(fake, http, query):
    response = http.get(f"{fake.url}/v1/customers?{query}")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    # As recorded: integer status, `badparam`, and source.parameter (singular) naming the parameter.
    assert error == {"status": 400, "source": {"parameter": query.partition("=")[0]}, "code": "badparam",
                     "title": "Bad Request", "detail": f"{query.partition('=')[0]} must be a positive integer"}


@pytest.mark.parametrize("headers, detail", [
    ({}, "Invalid or expired auth token"),
    ({"Authorization": "Bearer nope"}, "Invalid or expired auth token"),
    ({"Authorization": f"Bearer {WRONG_REGION_KEY}"},
     "Auth token associated with pod prod2 but request is being handled by prod1"),
])
def test_bad_tokens_are_401_and_the_log_never_keeps_them(fake, headers, detail):
    response = requests.get(fake.url + "/v1/customers?pageSize=1", headers=headers)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"errors": [{"status": 401, "code": "unauthorized", "title": "Unauthorized",
                                           "detail": detail}]}
    entry = dict(fake.requests_log[-1])
    assert time.time() - 5 < entry.pop("at") <= time.time()
    assert entry == {"method": "GET", "path": "/v1/customers", "query": {"pageSize": "1"}, "authorized": False,
                     "status": 401}


def test_current_token_user_and_org(fake, http):
    token = http.get(fake.url + "/v1/auth/tokens/current").json()["data"]
    assert token["type"] == "auth_token" and token["attributes"]["lastTokenChars"] == "-key"
    for path in ("/v1/users/current", "/v1/users/current/"):
        user = http.get(fake.url + path).json()["data"]
        assert user["attributes"]["userType"] == "machine"
        assert user["id"] == token["relationships"]["user"]["data"]["id"]
    org = http.get(fake.url + "/v1/orgs/current").json()["data"]
    assert org["attributes"]["name"] == "acme" and org["id"] == user["relationships"]["org"]["data"]["id"]


def test_single_resources_unknown_paths_and_methods(fake, http):
    customer = fake.dataset.resources["customers"][42]
    assert http.get(fake.url + customer["links"]["self"]).json() == {"data": customer}
    assert http.get(fake.url + "/v1/customers/" + "0" * 24).status_code == 404
    missing = http.get(fake.url + "/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"status": 404, "code": "notfound", "title": "Not Found"}]}  # as recorded
    assert http.get(fake.url + "/v1/customers/" + "0" * 24).json() == missing.json()
    assert http.post(fake.url + "/v1/customers", json={}).status_code == 405


def test_same_seed_gives_byte_identical_responses():
    bodies = []
    for _ in range(2):
        with FakeKustomer(Dataset(seed=3)) as server:
            bodies.append(requests.get(server.url + "/v1/messages?page=4", headers=AUTH).content)
    assert bodies[0] == bodies[1] and len(bodies[0]) > 1000


def test_data_is_consistent_and_exercises_the_awkward_cases():
    ds = Dataset()
    every = [r for records in [*ds.resources.values(), *ds.kobjects.values()] for r in records]
    ids = {r["id"] for r in every}
    assert len(ids) == len(every) and all(len(i) == 24 and int(i, 16) >= 0 for i in ids)
    # Every to-one relationship points at a served record (queues and the org are referenced, not listed).
    for record in every:
        for name, relationship in record["relationships"].items():
            target = relationship.get("data")
            if target and target["type"] not in ("org", "queue", "klass"):
                assert target["id"] in ids, (record["type"], name)
    conversations = {c["id"]: c for c in ds.resources["conversations"]}
    for message in ds.resources["messages"]:
        conversation = conversations[message["relationships"]["conversation"]["data"]["id"]]
        assert message["relationships"]["customer"] == conversation["relationships"]["customer"]
    assert sum(c["attributes"]["messageCount"] for c in conversations.values()) == len(ds.resources["messages"])
    assert sum(b["attributes"]["default"] for b in ds.resources["brands"]) == 1
    assert any(isinstance(m["attributes"]["meta"]["to"], str) for m in ds.resources["messages"])
    for stream in ("customers", "conversations", "messages", "notes", "users"):
        attributes = [r["attributes"] for r in ds.resources[stream]]
        assert all(a["createdAt"] <= a["modifiedAt"] <= a["updatedAt"] for a in attributes)
        assert Counter(a["updatedAt"] for a in attributes).most_common(1)[0][1] >= 15  # keyset ties
        assert min(a["updatedAt"] for a in attributes) < "2024-01-01"  # outside the two-year search horizon


# --- Search -------------------------------------------------------------------------------------------------------

NOW = datetime(2026, 10, 15, tzinfo=timezone.utc)
HORIZON = NOW - timedelta(days=730)  # 2024-10-15: search sees updatedAt >= this, archive search the rest
STREAM_OF = {"customer": "customers", "conversation": "conversations", "message": "messages", "note": "notes",
             "company": "companies"}
CUSTOMER_BURST = "2026-09-23T13:50:57.343Z"  # 30 customers share this updatedAt in the default dataset


def instant(stamp: str) -> datetime:
    """An oracle independent of the fake's parser: both `...Z` timestamps and bare dates, as UTC instants."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00") if "T" in stamp else stamp + "T00:00:00+00:00")


def updated(record) -> datetime:
    return instant(record["attributes"]["updatedAt"])


def in_order(records) -> list[str]:
    return [r["id"] for r in sorted(records, key=lambda r: (updated(r), r["id"]))]


def search(fake, body, page=None, page_size=None, archive=False):
    """(status, body) of one search request, through handle(): no socket needed."""
    query = {name: str(v) for name, v in (("page", page), ("pageSize", page_size)) if v is not None}
    path = "/v1/customers/archive/search" if archive else "/v1/customers/search"
    return fake.handle("POST", path, query, AUTH["Authorization"], json.dumps(body).encode())


def search_all(fake, body, page_size=500, archive=False) -> list[dict]:
    """Every page, following links.next and POSTing the same body again (the links carry only page/pageSize)."""
    records, link = [], ("/v1/customers/archive/search" if archive else "/v1/customers/search") + f"?pageSize={page_size}"
    while link:
        url = urlsplit(link)
        status, payload = fake.handle("POST", url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                                      AUTH["Authorization"], json.dumps(body).encode())
        assert status == 200, payload
        records += payload["data"]
        link = payload["links"]["next"]
    return records


@pytest.fixture(scope="module")
def searchable():
    """A server that is never started (tests call handle()) and never mutated."""
    return FakeKustomer(Dataset(), now=NOW)


@pytest.fixture()
def mutable():
    return FakeKustomer(Dataset(), now=NOW)


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
                             "aggregations": {}}
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


# --- Mutations between syncs --------------------------------------------------------------------------------------

def get(fake, path):
    return fake.handle("GET", path, {}, AUTH["Authorization"])


def listed(fake, path) -> list[str]:
    """Ids of a whole GET list, through handle()."""
    ids, link = [], path
    while link:
        url = urlsplit(link)
        status, page = fake.handle("GET", url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                                   AUTH["Authorization"])
        assert status == 200, page
        ids += [r["id"] for r in page["data"]]
        link = page["links"]["next"]
    return ids


def test_the_dataset_stamps_with_the_server_clock():
    fake = FakeKustomer(Dataset(), now=NOW)
    assert fake.dataset.clock() == NOW
    [touched] = fake.dataset.touch("tags", [fake.dataset.resources["tags"][0]["id"]])
    assert touched["attributes"]["updatedAt"] == "2026-10-15T00:00:00.000Z"
    fake.now = NOW + timedelta(seconds=1.5)
    assert fake.dataset.create("brands", 1)[0]["attributes"]["createdAt"] == "2026-10-15T00:00:01.500Z"
    with pytest.raises(ValueError):
        FakeKustomer(Dataset(), now=datetime(2026, 10, 15))  # naive: ambiguous


def test_touch_moves_records_to_the_end_of_search_as_a_burst_of_ties(mutable):
    ds, at = mutable.dataset, "2026-10-14T08:00:00.000000Z"
    old = [r for r in ds.resources["customers"] if updated(r) < HORIZON and not r["attributes"]["deleted"]][:5]
    revs = [r["attributes"]["rev"] for r in old]
    body = {"queryContext": "customer", "and": [{"customer_updated_at": {"gte": "2026-10-14"}}]}
    assert search_all(mutable, body) == []  # also builds the index the touch must invalidate
    touched = ds.touch("customers", [r["id"] for r in reversed(old)], at=at)
    assert [r["attributes"]["rev"] for r in touched[::-1]] == [rev + 1 for rev in revs]
    assert [r["id"] for r in search_all(mutable, body, page_size=2)] == sorted(r["id"] for r in old)
    got = get(mutable, f"/v1/customers/{old[0]['id']}")[1]["data"]["attributes"]
    assert got["updatedAt"] == got["modifiedAt"] == "2026-10-14T08:00:00.000Z"  # Kustomer's millisecond format
    assert not {r["id"] for r in old} & {r["id"] for r in search_all(mutable, {"queryContext": "customer"},
                                                                      archive=True)}
    with pytest.raises(KeyError):
        ds.touch("customers", ["0" * 24])


def test_create_adds_realistic_records_with_ids_above_every_other(mutable):
    ds = mutable.dataset
    newest = max(r["id"] for records in [*ds.resources.values(), *ds.kobjects.values()] for r in records)
    before, listed_before = search_all(mutable, {"queryContext": "message"}), listed(mutable, "/v1/messages")
    messages = ds.create("messages", 3, at="2026-10-14T10:00:00Z")
    assert all(m["id"] > newest for m in messages) and len({m["id"] for m in messages}) == 3
    for m in messages:
        attrs = m["attributes"]
        assert attrs["createdAt"] == attrs["updatedAt"] == attrs["sentAt"] == "2026-10-14T10:00:00.000Z"
        conversation = get(mutable, f"/v1/conversations/{m['relationships']['conversation']['data']['id']}")[1]["data"]
        assert m["relationships"]["customer"] == conversation["relationships"]["customer"]
        assert m["links"]["self"] == f"/v1/messages/{m['id']}" and m["type"] == "message"
    after = search_all(mutable, {"queryContext": "message"})
    assert [r["id"] for r in after] == [r["id"] for r in before] + [m["id"] for m in messages]
    assert listed(mutable, "/v1/messages") == listed_before + [m["id"] for m in messages]  # id order: new ones last
    customers = ds.create("customers", 40)  # born live: none of them is deleted
    assert all(not c["attributes"]["deleted"] for c in customers) and len(ds.all("customers")) == 290
    assert len(ds.create("conversations", 2)) == 2 and ds.all("customers") == ds.resources["customers"]


def test_create_kobjects_and_klasses(mutable):
    ds = mutable.dataset
    with pytest.raises(ValueError):
        ds.create("kobjects", 1)
    [order] = ds.create("kobjects", 1, klass="order", at="2026-10-01T00:00:00.000Z")
    assert order["type"] == "kobject.order" and order["relationships"]["klass"]["data"]["id"] == "order"
    found = search_all(mutable, {"queryContext": "kobject_order", "and": [{"kobject_id": {"equals": order["id"]}}]})
    assert found == [order] and order in ds.all("kobjects")
    [klass] = ds.create("klasses", 1)
    name = klass["attributes"]["name"]
    assert get(mutable, f"/v1/klasses/{name}")[1]["data"] == []
    [thing] = ds.create("kobjects", 2, klass=name)[:1]
    assert search(mutable, {"queryContext": f"kobject_{name}"})[1]["meta"]["total"] == 2
    assert thing["type"] == f"kobject.{name}" and get(mutable, thing["links"]["self"])[1]["data"] == thing


def test_soft_delete_hides_from_search_unless_include_deleted_and_bumps_updated_at(mutable):
    ds = mutable.dataset
    victim = next(r for r in ds.resources["notes"] if updated(r) >= HORIZON and not r["attributes"]["deleted"])
    body = {"queryContext": "note"}
    assert victim["id"] in {r["id"] for r in search_all(mutable, body)}
    ds.delete("notes", [victim["id"]], at="2026-10-14T12:00:00.000Z")
    assert victim["id"] not in {r["id"] for r in search_all(mutable, body)}
    [deleted] = [r["attributes"] for r in search_all(mutable, body | {"includeDeleted": True}) if r["id"] == victim["id"]]
    assert deleted["deleted"] is True and deleted["deletedAt"] == deleted["updatedAt"] == "2026-10-14T12:00:00.000Z"
    assert get(mutable, f"/v1/notes/{victim['id']}")[1]["data"]["attributes"]["deleted"] is True  # still listed


def test_hard_delete_removes_records_everywhere(mutable):
    ds = mutable.dataset
    customer = next(r for r in ds.resources["customers"] if updated(r) >= HORIZON)
    kobject = ds.kobjects["subscription"][0]
    assert customer["id"] in listed(mutable, "/v1/customers")
    ds.delete("customers", [customer["id"]], hard=True)
    ds.delete("kobjects", [kobject["id"]], hard=True)  # found without naming its klass
    assert get(mutable, f"/v1/customers/{customer['id']}")[0] == 404
    assert customer["id"] not in listed(mutable, "/v1/customers")
    everything = {"queryContext": "customer", "includeDeleted": True}
    assert customer["id"] not in {r["id"] for r in search_all(mutable, everything) + search_all(mutable, everything,
                                                                                                 archive=True)}
    assert kobject not in ds.all("kobjects") and len(ds.all("customers")) == 249
    assert get(mutable, kobject["links"]["self"])[0] == 404


def test_metadata_describes_each_resource_and_klass_and_404s_an_unknown_one(mutable):
    ds = mutable.dataset
    status, body = get(mutable, "/v1/metadata/customer")
    properties = body["data"]["attributes"]["properties"]
    assert status == 200 and {k: v["type"] for k, v in properties.items()}["totalSpentNum"] == "number"
    live = {k for k, v in properties.items() if "deletedAt" not in v}
    assert live >= {key for c in ds.all("customers") for key in c["attributes"]["custom"]}  # the data follows it
    klass = get(mutable, "/v1/metadata/kobject.subscription")[1]["data"]["attributes"]["properties"]
    assert set(klass) == {key for k in ds.kobjects["subscription"] for key in k["attributes"]["custom"]}
    assert get(mutable, "/v1/metadata/kobject.nope")[0] == get(mutable, "/v1/metadata/widget")[0] == 404


def test_conversation_times_are_stable_and_404_once_the_conversation_is_gone(mutable):
    conversation = mutable.dataset.all("conversations")[5]
    path = f"/v1/conversations/{conversation['id']}/times"
    first, again = get(mutable, path), get(mutable, path)
    assert first == again and first[0] == 200
    assert all(t["relationships"]["conversation"]["data"]["id"] == conversation["id"] for t in first[1]["data"])
    mutable.dataset.delete("conversations", [conversation["id"]], hard=True)
    assert get(mutable, path)[0] == 404


def test_audit_logs_walk_back_in_time_with_before_and_filter_by_type_and_time(mutable):
    ds = mutable.dataset
    gone = ds.all("conversations")[0]
    ds.delete("conversations", [gone["id"]], hard=True, at="2026-10-20T00:00:00.000Z")
    query, pages = {"count": "7", "filter[objectType]": "conversation", "filter[start]": "2025-01-01T00:00:00Z"}, []
    while query:
        status, page = mutable.handle("GET", "/v1/audit-logs", query, AUTH["Authorization"])
        assert status == 200
        pages.append(page)
        link = page["links"]["next"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()} if link else None
    entries = [e["attributes"] | {"id": e["id"]} for page in pages for e in page["data"]]
    assert len(pages) > 1 and all(len(page["data"]) <= 7 for page in pages)
    assert [e["createdAt"] for e in entries] == sorted((e["createdAt"] for e in entries), reverse=True)
    assert {e["objectType"] for e in entries} == {"conversation"} and min(e["createdAt"] for e in entries) >= "2025"
    assert len({e["id"] for e in entries}) == len(entries) == pages[0]["meta"]["total"]
    assert entries[0]["objectId"] == gone["id"] and entries[0]["eventVerb"] == "delete"
    status, error = mutable.handle("GET", "/v1/audit-logs", {"filter[start]": "2025-01-01", "filter[end]": "soon"},
                                   AUTH["Authorization"])
    assert status == 400 and error["errors"][0]["source"] == {"parameter": "filter[end]"}  # the bad one of the two


# --- Faults -------------------------------------------------------------------------------------------------------

SMALL = {k: 5 for k in DEFAULT_SIZES}  # fault tests need a few pages, not realistic volumes
RATE_HEADERS = ("X-Ratelimit-Limit", "X-Ratelimit-Remaining")  # on every recorded response, capitalised so
RECORDED = {"X-Kustomer-Pod": "prod1", "Cache-Control": "no-cache,private"}  # also on every recorded response
NEVER = ("X-Ratelimit-Reset", "Retry-After")  # on none of them
MINUTE = 1_800_000_000.0  # epoch seconds at the start of a minute of the clock (a multiple of 60)


@pytest.fixture()
def faulty():
    """start(**faults) -> a fresh server on a free port; all stopped after the test."""
    servers = []

    def start(dataset=None, **faults):
        servers.append(FakeKustomer(dataset or Dataset(SMALL), faults=Faults(**faults)).start())
        servers[-1].wall = lambda: MINUTE + 30  # mid-minute: no test straddles a window by chance; tests move it
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def call(fake, method, path, body=None, authorization=AUTH["Authorization"]):
    """serve() without a socket: the same faults, rate limits and headers as over HTTP."""
    url = urlsplit(path)
    return fake.serve(method, url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, authorization,
                      b"" if body is None else json.dumps(body).encode(), url.query)


def test_faults_are_off_by_default_and_every_response_carries_the_recorded_headers(faulty, http):
    fake = faulty()
    answers = [http.get(fake.url + "/v1/customers?pageSize=2"), http.get(fake.url + "/v1/customers?pageSize=0"),
               http.post(fake.url + "/v1/customers", json={}), http.post(fake.url + "/v1/customers/search",
                                                                          json={"queryContext": "customer"}),
               requests.get(fake.url + "/v1/tags"), http.get(fake.url + "/not-the-api")]
    assert [a.status_code for a in answers] == [200, 400, 405, 200, 401, 404]
    assert all(name in a.headers for a in answers for name in RATE_HEADERS)
    assert all(a.headers[name] == value for a in answers for name, value in RECORDED.items())
    assert not any(name in a.headers for a in answers for name in NEVER)  # as recorded: no reset, no Retry-After
    # The real API's default budget: the four authorized /v1 requests count down, the 401 and the non-API 404 don't.
    assert [a.headers["X-Ratelimit-Remaining"] for a in answers] == ["999", "998", "997", "996", "996", "996"]
    assert {a.headers["X-Ratelimit-Limit"] for a in answers} == {"1000"}
    assert fake.stats.requests == 6 and not fake.stats.faults and fake.stats.rate_limited == 0
    assert [(w.start, w.served, w.searches, w.others) for w in fake.stats.windows] == [(MINUTE, 4, 1, 0)]
    conn = http_client.HTTPConnection(fake.host, fake.port, timeout=5)
    conn.request("GET", "/v1/brands", headers=AUTH)
    response = conn.getresponse()
    response.read()
    conn.close()
    # Spelled on the wire as recorded (requests' headers ignore case, so check the raw names).
    assert {*RATE_HEADERS, *RECORDED} <= {name for name, _ in response.getheaders()}


def test_the_command_line_takes_the_new_forms_and_refuses_unknown_names(capsys):
    with pytest.raises(SystemExit):
        main(["--reset-header", "on_429", "--refusal-status", "403", "--forbidden", "notes,note"])
    assert "unknown list names ['note']" in capsys.readouterr().err  # a usage error, not a traceback
    with pytest.raises(SystemExit):
        main(["--reset-header", "sometimes"])
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_fault_settings_are_checked():
    assert Faults(forbidden="notes", error_kinds="reset").forbidden == frozenset({"notes"})
    with pytest.raises(ValueError, match="note"):
        Faults(forbidden={"note"})  # singular: a typo that would otherwise switch nothing on
    with pytest.raises(ValueError, match="404"):
        Faults(error_kinds=("500", "404"))
    with pytest.raises(ValueError, match="audit_logs"):
        Faults(missing={"audit_logs"})
    with pytest.raises(ValueError, match="tag"):
        Faults(bad_param="tag")
    with pytest.raises(ValueError, match="402"):
        Faults(refusal_status=402)
    with pytest.raises(ValueError, match="on_429"):
        Faults(reset_header="on429")
    with pytest.raises(ValueError, match="request"):
        Faults(window_start="first")
    with pytest.raises(ValueError, match="others_per_window"):
        Faults(others_per_window=-1)


@pytest.mark.parametrize("kind, status, content_type, looks_like", [
    ("500", 500, "application/json", '"code": "internal_server_error"'),
    ("502", 502, "text/html", "502 Bad Gateway"),  # from the load balancer: HTML, not Kustomer's errors body
    ("503", 503, "application/json", '"code": "service_unavailable"'),
    ("html", 200, "text/html", "<html>maintenance</html>"),
])
def test_error_faults_answer_with_their_status_and_body(faulty, http, kind, status, content_type, looks_like):
    fake = faulty(error_rate=1.0, error_kinds=(kind,))
    response = http.get(fake.url + "/v1/customers")
    assert response.status_code == status and response.headers["Content-Type"].startswith(content_type)
    assert looks_like in response.text and all(name in response.headers for name in RATE_HEADERS)
    if content_type == "text/html":
        with pytest.raises(requests.JSONDecodeError):
            response.json()
    assert fake.requests_log[-1]["fault"] == kind and fake.requests_log[-1]["status"] == status
    # Answered before the API: the rate limiter never counted it, so a retry gets the full budget and the data.
    assert response.headers["X-Ratelimit-Remaining"] == "1000" and fake.stats.windows[-1].served == 0
    fake.faults.error_rate = 0
    retry = http.get(fake.url + "/v1/customers")
    assert retry.status_code == 200 and len(retry.json()["data"]) == 5 and fake.stats.faults == {kind: 1}


def test_reset_closes_the_connection_without_an_answer(faulty, http):
    fake = faulty(error_rate=1.0, error_kinds=("reset",))
    with pytest.raises(requests.ConnectionError):
        http.get(fake.url + "/v1/customers")
    conn = http_client.HTTPConnection(fake.host, fake.port, timeout=5)
    conn.request("GET", "/v1/customers", headers=AUTH)
    with pytest.raises(ConnectionResetError):  # also covers http.client.RemoteDisconnected
        conn.getresponse()
    conn.close()
    assert fake.stats.faults == {"reset": 2} and "status" not in fake.requests_log[-1]
    fake.faults.error_rate = 0
    assert http.get(fake.url + "/v1/customers").status_code == 200  # the session reconnects


def test_truncated_sends_half_the_real_body_under_the_full_content_length(faulty, http):
    fake = faulty(error_rate=1.0, error_kinds=("truncated",))
    conn = http_client.HTTPConnection(fake.host, fake.port, timeout=5)
    conn.request("GET", "/v1/customers?pageSize=2", headers=AUTH)
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("X-Ratelimit-Remaining") == "1000"
    with pytest.raises(http_client.IncompleteRead) as cut:
        response.read()
    conn.close()
    with pytest.raises(ValueError):
        json.loads(cut.value.partial)
    # requests checks Content-Length: a client sees ChunkedEncodingError, not a JSON error.
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.get(fake.url + "/v1/customers?pageSize=2")
    fake.faults.error_rate = 0
    whole = http.get(fake.url + "/v1/customers?pageSize=2")
    assert int(response.getheader("Content-Length")) == len(whole.content) == 2 * len(cut.value.partial) + 1
    assert whole.content.startswith(cut.value.partial)  # the same data the retry gets


def test_error_rate_is_roughly_honoured_and_the_same_seed_meets_the_same_faults():
    def run(fake, n=1000):
        start = len(fake.requests_log)
        for _ in range(n):
            call(fake, "GET", "/v1/brands")
        return [entry.get("fault") for entry in fake.requests_log[start:]]

    fake = FakeKustomer(Dataset(SMALL), faults=Faults(error_rate=0.3, seed=5))
    fake.wall = lambda: MINUTE + 30  # all in one window
    drawn = run(fake)
    faulted = [kind for kind in drawn if kind]
    assert 250 <= len(faulted) <= 350 and set(faulted) == set(FAULT_KINDS)
    assert fake.stats.faults == Counter(faulted) and fake.stats.windows[-1].served == 1000 - len(faulted)
    assert run(FakeKustomer(Dataset(SMALL), faults=Faults(error_rate=0.3, seed=5))) == drawn
    assert run(FakeKustomer(Dataset(SMALL), faults=Faults(error_rate=0.3, seed=6))) != drawn
    fake.faults = Faults(error_rate=0.3, seed=5)  # assigning restarts the sequence
    assert run(fake) == drawn
    fake.faults = Faults(error_rate=0.3, error_kinds=("503",), seed=5)
    assert [kind and "503" for kind in drawn] == run(fake)  # the kinds narrow what is drawn, not where
    fake.faults = Faults(error_rate=0.3, seed=5, slow_rate=0.001, slow_seconds=0.001)
    assert run(fake) == drawn  # nor does switching another fault on


def test_429_after_the_limit_and_a_fresh_budget_at_the_next_minute_of_the_clock(faulty, http):
    fake = faulty(rate_limit=3)  # 60 s windows of the clock, as Kustomer counts its minute
    fake.wall = lambda: MINUTE + 45
    first = [http.get(fake.url + "/v1/tags?pageSize=2") for _ in range(3)]
    assert [r.status_code for r in first] == [200] * 3
    assert [r.headers["X-Ratelimit-Remaining"] for r in first] == ["2", "1", "0"]
    refused = [http.get(fake.url + "/v1/tags?pageSize=2") for _ in range(2)]
    assert [r.status_code for r in refused] == [429, 429]
    assert refused[0].json() == {"errors": [{"status": 429, "code": "too_many_requests", "title": "Too Many Requests",
                                             "detail": "Rate limit exceeded"}]}
    assert refused[0].headers["X-Ratelimit-Limit"] == "3" and refused[0].headers["X-Ratelimit-Remaining"] == "0"
    assert not any(name in r.headers for r in refused for name in NEVER)  # nothing says when to come back
    fake.wall = lambda: MINUTE + 59.999  # the same minute: still refused
    assert http.get(fake.url + "/v1/tags?pageSize=2").status_code == 429
    fake.wall = lambda: MINUTE + 60  # the next minute, only 15 s after the first request: the whole budget again
    again = http.get(fake.url + "/v1/tags?pageSize=2")
    assert again.status_code == 200 and again.headers["X-Ratelimit-Remaining"] == "2"
    stats = fake.stats
    assert [(w.start, w.served) for w in stats.windows] == [(MINUTE, 3), (MINUTE + 60, 1)]
    assert stats.max_per_window == 3 and stats.rate_limited == 3
    assert [e["status"] for e in fake.requests_log] == [200, 200, 200, 429, 429, 429, 200]


def test_request_windows_open_at_the_first_request_after_the_last_one_ended():
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(rate_limit=3, window_start="request", reset_header="epoch"))
    fake.wall = lambda: MINUTE + 45
    answers = [call(fake, "GET", "/v1/tags") for _ in range(4)]
    fake.wall = lambda: MINUTE + 60  # a new minute of the clock, but this window runs until MINUTE + 105
    answers.append(call(fake, "GET", "/v1/tags"))
    fake.wall = lambda: MINUTE + 105
    answers.append(call(fake, "GET", "/v1/tags"))
    assert [a.status for a in answers] == [200, 200, 200, 429, 429, 200]
    assert [a.headers["X-Ratelimit-Reset"] for a in answers] == [str(int(MINUTE + 105))] * 5 + [str(int(MINUTE + 165))]
    assert [(w.start, w.served) for w in fake.stats.windows] == [(MINUTE + 45, 3), (MINUTE + 105, 1)]


@pytest.mark.parametrize("form, on_200, on_429", [
    ("none", None, None),  # as recorded
    ("epoch", str(int(MINUTE + 60)), str(int(MINUTE + 60))),  # the end of the minute, on every response
    ("delta", "16", "16"),  # 15.5 s to the end of the minute, rounded up: waiting that long finds it open
    ("on_429", None, str(int(MINUTE + 60))),
])
def test_reset_header_forms(form, on_200, on_429):
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(rate_limit=1, reset_header=form))
    fake.wall = lambda: MINUTE + 44.5
    ok, refused = call(fake, "GET", "/v1/brands"), call(fake, "GET", "/v1/brands")
    assert (ok.status, refused.status) == (200, 429)
    assert (ok.headers.get("X-Ratelimit-Reset"), refused.headers.get("X-Ratelimit-Reset")) == (on_200, on_429)
    assert "Retry-After" not in ok.headers | refused.headers


def test_other_users_requests_count_into_each_window_as_it_opens():
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(rate_limit=10, others_per_window=7))
    fake.wall = lambda: MINUTE + 10
    first = [call(fake, "GET", "/v1/tags") for _ in range(4)]
    # The agents used 7 of the org's 10: only 3 are ours, and the headers say so from the first answer.
    assert [r.status for r in first] == [200, 200, 200, 429]
    assert [r.headers["X-Ratelimit-Remaining"] for r in first] == ["2", "1", "0", "0"]
    fake.wall = lambda: MINUTE + 70  # the next minute: the agents are back with it
    assert call(fake, "GET", "/v1/tags").headers["X-Ratelimit-Remaining"] == "2"
    assert [(w.others, w.served) for w in fake.stats.windows] == [(7, 3), (7, 1)]
    fake.faults = Faults(others_per_window=400)  # no limit enforced: the headers still show the shared budget
    fake.wall = lambda: MINUTE + 130
    assert call(fake, "GET", "/v1/tags").headers["X-Ratelimit-Remaining"] == str(1000 - 400 - 1)


def test_searches_have_their_own_limit_inside_the_org_wide_one():
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(rate_limit=6, search_rate_limit=2))
    fake.wall = lambda: MINUTE + 30  # all in one window
    body = {"queryContext": "customer"}
    statuses = [call(fake, "POST", "/v1/customers/search", body).status,
                call(fake, "POST", "/v1/customers/archive/search", body).status]
    over = call(fake, "POST", "/v1/customers/search", body)
    assert statuses == [200, 200] and over.status == 429
    assert over.headers["X-Ratelimit-Limit"] == "2" and over.headers["X-Ratelimit-Remaining"] == "0"
    assert json.loads(over.body)["errors"][0]["code"] == "too_many_requests"
    gets = [call(fake, "GET", "/v1/tags") for _ in range(5)]  # searches used 2 of the org's 6
    assert [r.status for r in gets] == [200] * 4 + [429] and gets[-1].headers["X-Ratelimit-Limit"] == "6"
    assert call(fake, "GET", "/v1/customers/search").status == 429  # a GET (405) is no search but counts org-wide
    assert fake.stats.max_searches_per_window == 2 and fake.stats.max_per_window == 6
    assert fake.stats.rate_limited == 3


def test_the_rate_limit_holds_under_concurrent_clients(faulty):
    fake = faulty(rate_limit=50, rate_window=60)

    def client(_):
        with requests.Session() as session:
            return [session.get(fake.url + "/v1/brands", headers=AUTH).status_code for _ in range(20)]

    with ThreadPoolExecutor(8) as pool:
        statuses = Counter(s for run in pool.map(client, range(8)) for s in run)
    assert statuses == {200: 50, 429: 110}
    assert fake.stats.windows[0].served == 50 and fake.stats.rate_limited == 110 and fake.stats.requests == 160


@pytest.mark.parametrize("name, refused, still_served, role", [
    ("notes", ["/v1/notes", "/v1/notes/{note}"], ["/v1/messages", "/v1/users/current"], "note.read"),
    ("users", ["/v1/users"], ["/v1/users/current", "/v1/teams"], "user.read"),
    ("kobjects", ["/v1/klasses/order", "/v1/klasses/subscription/{kobject}"], ["/v1/klasses", "/v1/klasses/{klass}"],
     "kobject.read"),
    ("klasses", ["/v1/klasses", "/v1/klasses/{klass}"], ["/v1/klasses/order"], "klass.read"),
    ("search", ["POST /v1/customers/search", "POST /v1/customers/archive/search"], ["/v1/customers"], "search.create"),
])
def test_forbidden_lists_are_401_like_a_bad_key_or_403_naming_the_missing_role(name, refused, still_served, role):
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(forbidden={name}))
    ds = fake.dataset
    ids = {"note": ds.resources["notes"][0]["id"], "kobject": ds.kobjects["subscription"][0]["id"],
           "klass": ds.resources["klasses"][0]["id"]}

    def status(request):
        method, _, path = request.rpartition(" ")
        return fake.handle(method or "GET", path.format(**ids), {}, AUTH["Authorization"],
                           b'{"queryContext": "customer"}' if method == "POST" else b"")

    bad_key = fake.handle("GET", "/v1/tags", {}, "Bearer nope")
    for request in refused:
        # Kustomer's 401 "missing role, invalid auth token, or billing feature": the body cannot tell which...
        assert status(request) == bad_key == (401, {"errors": [{"status": 401, "code": "unauthorized",
                                                                "title": "Unauthorized",
                                                                "detail": "Invalid or expired auth token"}]}), request
    # ...only the token endpoint can: it answers any valid key, whatever its roles.
    assert fake.handle("GET", "/v1/auth/tokens/current", {}, AUTH["Authorization"])[0] == 200
    assert [status(request)[0] for request in still_served] == [200] * len(still_served)
    fake.faults = Faults(forbidden={name}, refusal_status=403)  # the other reading: a 403 naming the role
    for request in refused:
        assert status(request) == (403, {"errors": [{"status": 403, "code": "forbidden", "title": "Forbidden",
                                                     "detail": f"Missing role org.permission.{role}"}]}), request
    assert [status(request)[0] for request in still_served] == [200] * len(still_served)
    assert fake.handle("GET", "/v1/notes", {}, None)[0] == 401  # authentication comes first
    fake.faults = Faults()
    assert status(refused[0])[0] == 200


def test_missing_lists_are_404_notfound_and_bad_param_lists_400_badparam():
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(missing={"audit-logs"}, bad_param="tags"))
    # The same 404 as an unknown id: an org whose plan has no audit log looks like one without the endpoint.
    assert fake.handle("GET", "/v1/audit-logs", {"count": "5"}, AUTH["Authorization"]) == (404, {
        "errors": [{"status": 404, "code": "notfound", "title": "Not Found"}]}) == get(fake, "/v1/users/" + "0" * 24)
    assert fake.handle("GET", "/v1/tags", {"pageSize": "3", "page": "2"}, AUTH["Authorization"]) == (400, {
        "errors": [{"status": 400, "source": {"parameter": "pageSize"}, "code": "badparam", "title": "Bad Request",
                    "detail": "Invalid value for pageSize"}]})
    assert get(fake, "/v1/tags")[1]["errors"][0]["source"] == {"parameter": "page"}  # no parameters: page
    assert get(fake, "/v1/tags/" + fake.dataset.resources["tags"][0]["id"])[0] == 400  # the list's records too
    assert get(fake, "/v1/users")[0] == 200 and fake.handle("GET", "/v1/audit-logs", {}, None)[0] == 401
    fake.faults = Faults(forbidden={"tags"}, missing={"tags"}, bad_param={"tags"})
    assert get(fake, "/v1/tags")[0] == 401  # forbidden first, then missing, then bad_param


def test_off_host_next_links_point_at_another_host(faulty, http):
    fake = faulty(Dataset(), off_host_next={"customers", "search"})
    page = http.get(fake.url + "/v1/customers?pageSize=100").json()
    assert page["links"]["next"] == "http://evil.example.invalid:9/v1/customers?page=2&pageSize=100"
    assert page["links"]["self"] == "/v1/customers?page=1&pageSize=100"  # only next moves
    assert http.get(fake.url + "/v1/customers?page=3&pageSize=100").json()["links"]["next"] is None
    assert http.get(fake.url + "/v1/tags").json()["links"]["next"] == "/v1/tags?page=2&pageSize=100"
    found = http.post(fake.url + "/v1/customers/search?pageSize=2", json={"queryContext": "customer"}).json()
    assert found["links"]["next"] == "http://evil.example.invalid:9/v1/customers/search?page=2&pageSize=2"
    fake.faults.off_host_next = frozenset()
    assert http.get(fake.url + "/v1/customers").json()["links"]["next"] == "/v1/customers?page=2&pageSize=100"


def test_redirect_sends_the_list_to_another_host(faulty, http):
    fake = faulty(redirect={"conversations", "kobjects"})
    moved = http.get(fake.url + "/v1/conversations?page=2&pageSize=3", allow_redirects=False)
    assert moved.status_code == 302 and moved.content == b""
    assert moved.headers["Location"] == "http://evil.example.invalid:9/v1/conversations?page=2&pageSize=3"
    assert all(name in moved.headers for name in RATE_HEADERS) and moved.headers["X-Ratelimit-Remaining"] == "999"
    kobjects = http.get(fake.url + "/v1/klasses/order", allow_redirects=False)
    assert kobjects.status_code == 302
    assert kobjects.headers["Location"] == "http://evil.example.invalid:9/v1/klasses/order"
    assert http.get(fake.url + "/v1/messages", allow_redirects=False).status_code == 200
    assert requests.get(fake.url + "/v1/conversations", allow_redirects=False).status_code == 401  # no key: no hint


def test_latency_and_slow_requests_that_trip_client_read_timeouts(faulty, http):
    fake = faulty(latency=0.15)
    started = time.monotonic()
    assert http.get(fake.url + "/v1/brands").status_code == 200 and time.monotonic() - started >= 0.15
    fake.faults = Faults(slow_rate=1.0, slow_seconds=0.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(fake.url + "/v1/brands", timeout=(2, 0.1))
    fake.faults.slow_rate = 0
    started = time.monotonic()
    assert http.get(fake.url + "/v1/brands", timeout=(2, 2)).status_code == 200 and time.monotonic() - started < 0.4
    assert fake.stats.slow == 1
