"""Fast checks that the fake Kustomer server behaves like the API reference says (pagination, auth, errors, data)."""

from collections import Counter

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
