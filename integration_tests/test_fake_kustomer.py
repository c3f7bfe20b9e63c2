"""Fast checks that the fake Kustomer server behaves like the API reference says (pagination, auth, errors, data,
search, and the test-only mutations between syncs)."""

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integration_tests.fake_kustomer import API_KEY, DEFAULT_SIZES, WRONG_REGION_KEY, Dataset, FakeKustomer

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
    assert response.json()["errors"][0]["code"] == "bad_request"


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
    entry = fake.requests_log[-1]
    assert entry == {"method": "GET", "path": "/v1/customers", "query": {"pageSize": "1"}, "authorized": False}


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
    assert missing.json() == {"errors": [{"status": 404, "code": "not_found", "title": "Not Found"}]}
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
    return datetime.fromisoformat(stamp if "T" in stamp else stamp + "T00:00:00+00:00")


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
    cap_error = {"errors": [{"status": 400, "code": "bad_request", "title": "Bad Request",
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


@pytest.mark.parametrize("body, named", [
    ({"queryContext": "customer", "and": [{"customer_colour": {"gte": "2024-01-01"}}]}, "customer_colour"),
    ({"queryContext": "conversation", "and": [{"customer_updated_at": {"gte": "2024-01-01"}}]}, "customer_updated_at"),
    ({"queryContext": "kobject_order", "and": [{"kobject_order_updated_at": {"gte": "2024-01-01"}}]},
     "kobject_order_updated_at"),
    ({"queryContext": "customer", "and": [{"customer_updated_at": {"after": "2024-01-01"}}]}, "after"),
    ({"queryContext": "customer", "and": [{"customer_updated_at": {"gte": "yesterday"}}]}, "yesterday"),
    ({"queryContext": "customer", "and": [{"customer_updated_at": {"gte": "2024-01-01T00:00:00.1234567Z"}}]},
     "2024-01-01T00:00:00.1234567Z"),
    ({"queryContext": "customer", "and": [{"customer_id": {"in": [["nested"]]}}]}, "customer_id"),
    ({"queryContext": "customer", "sort": [{"customer_name": "asc"}]}, "customer_name"),
    ({"queryContext": "customer", "sort": [{"customer_updated_at": "up"}]}, "customer_updated_at"),
    ({"queryContext": "user"}, "user"),
    ({"and": []}, "queryContext"),
    (["not", "an", "object"], "JSON object"),
])
def test_bad_searches_are_400_naming_what_is_wrong(searchable, body, named):
    status, error = search(searchable, body)
    assert status == 400
    [e] = error["errors"]
    assert e["status"] == 400 and e["code"] == "bad_request" and named in e["detail"]


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
                                     "authorized": True, "body": body}
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
