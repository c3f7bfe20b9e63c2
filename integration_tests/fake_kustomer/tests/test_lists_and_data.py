"""The fake's GET lists, auth, errors and data, and the test-only mutations between syncs."""

import time
from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integration_tests.fake_kustomer import DEFAULT_SIZES, WRONG_REGION_KEY, Dataset, FakeKustomer
from integration_tests.fake_kustomer.tests.common import (AUTH, HORIZON, NOW, fetch_all, get, listed, search,
                                                          search_all, updated)


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
    # Every relationship points at a served record (the org, klasses by name and knowledge bases are referenced, not
    # listed; SLA versions are served with their SLA).
    versions = {v["id"] for made in ds.sla_versions.values() for v in made}
    for record in every:
        for name, relationship in record["relationships"].items():
            data = relationship.get("data")
            for target in data if isinstance(data, list) else [data] if data else []:
                if target["type"] == "sla_version":
                    assert target["id"] in versions, (record["type"], name)
                elif target["type"] not in ("org", "klass", "knowledge_base"):
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


# --- Mutations between syncs --------------------------------------------------------------------------------------

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
