"""The lists added for the newer streams: paging and refusals of every one, SLAs and their versions, holidays,
custom-attribute metadata, the knowledge base, snooze options and message attachments."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from integration_tests.fake_kustomer import (CHANNELS, DEFAULT_SIZES, LIST_NAMES, METADATA, UNAUTHORIZED, Dataset,
                                             FakeKustomer, Faults, main)
from integration_tests.fake_kustomer.tests.common import AUTH, NOW, call, get, search

NEW_LISTS = {"routing/statuses": "status", "routing/work-sessions": "work_session", "routing/work-items": "work_item",
             "slas": "sla", "kb/articles": "kb_article", "kb/categories": "kb_category", "snoozes": "snooze"}
NOT_FOUND = {"errors": [{"status": 404, "code": "notfound", "title": "Not Found"}]}


@pytest.fixture(scope="module")
def org():
    return FakeKustomer(Dataset(), now=NOW)


def ask(fake, path, **query):
    return fake.handle("GET", path, {k: str(v) for k, v in query.items()}, AUTH["Authorization"])


def follow(fake, link):
    url = urlsplit(link)
    return fake.handle("GET", url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, AUTH["Authorization"])


@pytest.mark.parametrize("stream", NEW_LISTS)
def test_every_new_list_pages_by_100_at_most_with_links_that_echo_the_other_parameters(org, stream):
    records = org.dataset.by_id(org.dataset.resources[stream])
    assert len(records) == DEFAULT_SIZES[stream] and {r["type"] for r in records} == {NEW_LISTS[stream]}
    status, first = ask(org, f"/v1/{stream}", pageSize=500)
    assert status == 200 and first["meta"] == {"pageSize": 100, "page": 1} and first["data"] == records[:100]
    # Other parameters come first, then page and pageSize; following next twice walks the list in id order.
    status, page = ask(org, f"/v1/{stream}", sort="asc", pageSize=3)
    assert page["links"] == {"self": f"/v1/{stream}?sort=asc&page=1&pageSize=3",
                             "first": f"/v1/{stream}?sort=asc&page=1&pageSize=3", "prev": None,
                             "next": f"/v1/{stream}?sort=asc&page=2&pageSize=3"}
    second = follow(org, page["links"]["next"])[1]
    assert [r["id"] for r in page["data"] + second["data"]] == [r["id"] for r in records[:6]]
    assert second["links"]["prev"] == f"/v1/{stream}?sort=asc&page=1&pageSize=3"
    served, link = [], f"/v1/{stream}?pageSize=100"
    while link:
        status, page = follow(org, link)
        served += page["data"]
        link = page["links"]["next"]
    assert served == records
    assert get(org, records[-1]["links"]["self"].replace("/work-item/", "/work-items/"))[1] == {"data": records[-1]}
    assert get(org, f"/v1/{stream}/{'0' * 24}") == (404, NOT_FOUND)


def test_the_older_lists_echo_their_other_parameters_too(org):
    status, page = ask(org, "/v1/notes", sort="asc", pageSize=100)
    assert page["links"]["next"] == "/v1/notes?sort=asc&page=2&pageSize=100"
    assert ask(org, "/v1/notes")[1]["links"]["next"] == "/v1/notes?page=2&pageSize=100"  # as before


@pytest.mark.parametrize("name, path, query", [
    ("routing/statuses", "/v1/routing/statuses", {}),
    ("routing-statuses", "/v1/routing/statuses", {}),
    ("routing/work-sessions", "/v1/routing/work-sessions", {"active": "true"}),
    ("routing-work-items", "/v1/routing/work-items", {}),
    ("slas", "/v1/slas", {}),
    ("slas", "/v1/slas/<sla>", {"versions": "all"}),
    ("kb/articles", "/v1/kb/articles", {}),
    ("kb-categories", "/v1/kb/categories", {}),
    ("snoozes", "/v1/snoozes", {}),
    ("holidays", "/v1/schedules/default", {"include": "holidays"}),
    ("schedules", "/v1/schedules/default", {}),
    ("attachments", "/v1/messages", {"include": "attachments"}),
    ("attachments", "/v1/conversations/<conversation>/attachments", {}),
])
def test_each_new_list_can_be_refused_401_403_404(org, name, path, query):
    path = path.replace("<sla>", org.dataset.resources["slas"][0]["id"])
    path = path.replace("<conversation>", org.dataset.resources["conversations"][0]["id"])
    assert org.handle("GET", path, query, AUTH["Authorization"])[0] == 200
    try:
        org.faults = Faults(forbidden={name})
        assert org.handle("GET", path, query, AUTH["Authorization"]) == (401, UNAUTHORIZED)
        org.faults = Faults(forbidden={name}, refusal_status=403)
        status, body = org.handle("GET", path, query, AUTH["Authorization"])
        assert status == 403 and body["errors"][0]["detail"].startswith("Missing role org.permission.")
        org.faults = Faults(missing={name})
        assert org.handle("GET", path, query, AUTH["Authorization"]) == (404, NOT_FOUND)
        org.faults = Faults(bad_param={name})
        assert org.handle("GET", path, query | {"x": "1"}, AUTH["Authorization"])[0] == 400
    finally:
        org.faults = Faults()


def test_the_roles_a_403_names_and_what_an_include_refusal_leaves_alone(org):
    org.faults = Faults(forbidden={"routing/work-sessions", "routing/work-items", "routing/statuses", "slas",
                                   "kb/articles", "snoozes", "attachments", "holidays"}, refusal_status=403)
    try:
        roles = {path: org.handle("GET", path, {}, AUTH["Authorization"])[1]["errors"][0]["detail"]
                 for path in ("/v1/routing/work-sessions", "/v1/routing/work-items", "/v1/routing/statuses",
                              "/v1/slas", "/v1/kb/articles", "/v1/snoozes")}
        assert roles == {"/v1/routing/work-sessions": "Missing role org.permission.work_session.read",
                         "/v1/routing/work-items": "Missing role org.permission.routing.read",
                         "/v1/routing/statuses": "Missing role org.permission.routing_status.read",
                         "/v1/slas": "Missing role org.permission.sla.read",
                         "/v1/kb/articles": "Missing role org.permission.kb.read",
                         "/v1/snoozes": "Missing role org.permission.snooze.read"}
        # Without the include, the list itself is served; with it, the missing attachment role refuses it all.
        assert ask(org, "/v1/messages")[0] == ask(org, "/v1/schedules/default")[0] == 200
        assert ask(org, "/v1/messages", include="attachments")[1]["errors"][0]["detail"] == \
            "Missing role org.permission.attachment.read"
        assert ask(org, "/v1/schedules/default", include="holidays")[0] == 403
    finally:
        org.faults = Faults()


def test_the_new_names_are_known_to_faults_and_the_command_line(command_line_faults):
    assert {"routing/work-sessions", "routing/work-items", "routing/statuses", "slas", "kb/articles", "kb/categories",
            "snoozes", "attachments", "holidays"} <= set(LIST_NAMES)
    assert Faults(forbidden="routing-statuses").forbidden == frozenset({"routing/statuses"})
    assert Faults(missing={"routing-work-sessions", "kb-articles"}).missing == {"routing/work-sessions", "kb/articles"}
    with pytest.raises(ValueError, match="routing-status"):
        Faults(forbidden={"routing-status"})
    main(["--forbidden", "routing-statuses,slas", "--missing", "kb/articles", "--scale", "0.01"])
    made = command_line_faults
    assert made[-1].forbidden == {"routing/statuses", "slas"} and made[-1].missing == {"kb/articles"}


# --- SLAs -----------------------------------------------------------------------------------------------------------


def test_an_sla_answers_its_versions_as_an_array_or_a_single_object(org):
    ds = org.dataset
    slas = ds.resources["slas"]
    assert [len(ds.sla_versions[s["id"]]) for s in slas] == [1, 2, 3, 1]  # both cases in the default org
    for sla in slas:
        attrs, versions = sla["attributes"], ds.sla_versions[sla["id"]]
        assert set(attrs) == {"currentVersion", "createdAt"}  # as Kustomer's example: no updatedAt
        assert sla["relationships"]["versions"] == {"data": [{"type": "sla_version", "id": v["id"]} for v in versions]}
        assert attrs["currentVersion"] == versions[-1]["attributes"]["version"] == len(versions)
        assert ask(org, f"/v1/slas/{sla['id']}") == (200, {"data": sla})  # no `included` unless asked
        status, everything = ask(org, f"/v1/slas/{sla['id']}", versions="all")
        assert status == 200 and everything["data"] == sla
        assert everything["included"] == (versions if len(versions) > 1 else versions[0])
        assert ask(org, f"/v1/slas/{sla['id']}", versions="active")[1]["included"] == versions[-1]
        for version in versions:
            v = version["attributes"]
            assert version["type"] == "sla_version" and version["relationships"]["sla"]["data"]["id"] == sla["id"]
            assert set(v) == {"name", "description", "version", "hours", "metrics", "criteria", "createdAt"}
            assert set(v["metrics"]) == {"firstResponse", "longestUnrespondedMessage", "totalConversationOpenTime",
                                         "totalCustomerWaitTime"}
            assert set(v["metrics"]["firstResponse"]["times"]) == {"1", "2", "3", "4", "5"}
            assert v["metrics"]["firstResponse"]["enabled"] and v["createdAt"] >= attrs["createdAt"]
            [criterion] = v["criteria"]["and"]
            assert criterion["conversation_channel"]["value"] in CHANNELS
    status, error = ask(org, f"/v1/slas/{slas[0]['id']}", versions="latest")
    assert status == 400 and error["errors"][0]["source"] == {"parameter": "versions"}
    assert ask(org, f"/v1/slas/{'0' * 24}", versions="all") == (404, NOT_FOUND)


def test_the_documented_example_reads_like_the_fake_s_single_version():
    with open("unit_tests/real_payloads/sla_get_with_versions.doc.json") as f:
        documented = json.load(f)
    fake = FakeKustomer(Dataset(), now=NOW)
    sla = fake.dataset.resources["slas"][0]
    served = ask(fake, f"/v1/slas/{sla['id']}", versions="all")[1]
    assert isinstance(documented["included"], dict) and isinstance(served["included"], dict)
    assert set(served["data"]["attributes"]) == set(documented["data"]["attributes"])
    assert set(served["included"]["attributes"]) == set(documented["included"]["attributes"])
    assert set(served["included"]["relationships"]) == set(documented["included"]["relationships"])


# --- Holidays -------------------------------------------------------------------------------------------------------


def test_schedules_by_id_or_default_include_their_holidays(org):
    ds = org.dataset
    schedules = ds.resources["schedules"]
    with open("unit_tests/real_payloads/schedule_get_by_id_include_holidays.doc.json") as f:
        documented = json.load(f)["included"][0]
    counts = []
    for schedule in schedules:
        assert ask(org, f"/v1/schedules/{schedule['id']}") == (200, {"data": schedule})
        status, body = ask(org, f"/v1/schedules/{schedule['id']}", include="holidays")
        assert status == 200 and body["data"] == schedule and isinstance(body["included"], list)
        counts.append(len(body["included"]))
        for holiday in body["included"]:
            assert holiday["type"] == "holiday" and holiday["links"]["self"] == f"/v1/holidays/{holiday['id']}"
            assert holiday["relationships"]["schedule"]["data"] == {"type": "schedule", "id": schedule["id"]}
            assert set(holiday["attributes"]) == set(documented["attributes"])
            assert set(holiday["relationships"]) == set(documented["relationships"])
            a = holiday["attributes"]
            assert a["startDate"] < a["endDate"] and a["endDate"].endswith(":59:59.000Z")
    assert counts == [4, 4, 0] and sum(counts) == DEFAULT_SIZES["holidays"]  # the last schedule has none
    default = next(s for s in schedules if s["attributes"]["default"])
    assert ask(org, "/v1/schedules/default", include="holidays")[1] == \
        ask(org, f"/v1/schedules/{default['id']}", include="holidays")[1]
    assert ask(org, "/v1/schedules/default")[1] == {"data": default}
    listed = ask(org, "/v1/schedules", include="holidays")[1]
    assert "included" not in listed and listed["data"] == ds.by_id(schedules)  # the list ignores include
    status, error = ask(org, "/v1/schedules/default", include="holiday")
    assert status == 400 and error["errors"][0]["source"] == {"parameter": "include"}


def test_a_holiday_is_whole_local_days_in_its_schedule_s_timezone(org):
    holidays = org.dataset.holidays
    new_york = next(s for s in org.dataset.resources["schedules"] if holidays[s["id"]]
                    and s["attributes"]["timezone"] == "America/New_York")
    for holiday in holidays[new_york["id"]]:
        start, end = holiday["attributes"]["startDate"], holiday["attributes"]["endDate"]
        assert start[11:] in ("04:00:00.000Z", "05:00:00.000Z")  # local midnight, summer or winter time
        assert end[11:] in ("03:59:59.000Z", "04:59:59.000Z")


# --- Metadata -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["customer", "conversation", "message", "company", "kobject.order",
                                      "kobject.subscription"])
def test_metadata_properties_carry_the_documented_fields(org, resource):
    status, body = ask(org, f"/v1/metadata/{resource}")
    data = body["data"]
    assert status == 200 and data["type"] == "metadata" and data["id"] == resource
    assert data["links"]["self"] == f"/v1/metadata/{resource}"
    users = {u["id"] for u in org.dataset.resources["users"]}
    for name, spec in data["attributes"]["properties"].items():
        assert {"type", "displayName", "multi", "modifiedBy", "modifiedAt", "updatedAt"} <= spec.keys(), name
        assert spec["modifiedBy"] in users and isinstance(spec["multi"], bool)
        if "enumeration" in spec:
            assert spec["enumeration"] and all(isinstance(v, str) for v in spec["enumeration"])
    if resource in METADATA:
        assert set(data["attributes"]["properties"]) == set(METADATA[resource])  # what the connector's tests read


def test_metadata_has_an_enumeration_a_lookup_and_a_deleted_attribute(org):
    customer = ask(org, "/v1/metadata/customer")[1]["data"]["attributes"]["properties"]
    assert customer["tierStr"]["enumeration"] == ["bronze", "silver", "gold"]
    assert customer["loyaltyIdStr"]["deletedAt"] == "2022-05-01T00:00:00.000Z"
    assert [n for n, s in customer.items() if "deletedAt" in s] == ["loyaltyIdStr"]
    conversation = ask(org, "/v1/metadata/conversation")[1]["data"]["attributes"]["properties"]
    assert conversation["orderNumberStr"]["target"] == "kobject.order" and conversation["orderNumberStr"]["multi"] is False
    order = ask(org, "/v1/metadata/kobject.order")[1]["data"]["attributes"]["properties"]
    assert order["statusStr"]["enumeration"] == ["new", "shipped", "cancelled"]


# --- Knowledge base and snoozes -------------------------------------------------------------------------------------


def test_kb_categories_form_trees_under_two_knowledge_bases(org):
    categories = {c["id"]: c for c in org.dataset.resources["kb/categories"]}
    roots = [c for c in categories.values() if c["attributes"]["root"]]
    assert len(roots) == 2 and all("parent" not in c["relationships"] for c in roots)
    for category in categories.values():
        a, rels = category["attributes"], category["relationships"]
        assert {"hash", "langs", "published", "root", "createdAt", "updatedAt"} <= a.keys()
        assert set(a["langs"]["en_us"]) == {"title", "slug", "description", "disabled"}
        kb = rels["knowledgeBase"]["data"]
        assert kb["type"] == "knowledge_base"
        if not a["root"]:
            parent = categories[rels["parent"]["data"]["id"]]
            assert parent["relationships"]["knowledgeBase"]["data"] == kb
    assert any(not c["attributes"]["published"] for c in categories.values())


def test_kb_articles_have_categories_languages_and_one_soft_deleted(org):
    categories = {c["id"]: c for c in org.dataset.resources["kb/categories"]}
    articles = org.dataset.resources["kb/articles"]
    deleted = [a for a in articles if a["attributes"]["deleted"]]
    assert len(deleted) == 1 and deleted[0]["attributes"]["deletedAt"] == deleted[0]["attributes"]["updatedAt"]
    for article in articles:
        a, rels = article["attributes"], article["relationships"]
        assert {"title", "status", "scope", "publishedAt", "deleted", "deletedAt", "tags", "categories",
                "knowledgeBases", "latestLangs", "createdAt", "updatedAt"} <= a.keys()
        assert a["categories"] and set(a["categories"]) <= set(categories)
        assert [c["id"] for c in rels["categories"]["data"]] == a["categories"]
        assert {k["id"] for k in a["knowledgeBases"]} == {
            categories[c]["relationships"]["knowledgeBase"]["data"]["id"] for c in a["categories"]}
        assert (a["publishedAt"] is not None) == (a["status"] == "published") == ("publishedBy" in rels)
        if a["publishedAt"]:
            assert a["createdAt"] <= a["publishedAt"] <= a["updatedAt"]
        assert all(set(lang) == {"status", "outdated"} for lang in a["latestLangs"].values())
        assert {"createdBy", "modifiedBy"} <= rels.keys()
    assert {a["attributes"]["status"] for a in articles} == {"published", "draft"}


def test_snooze_options_are_relative_dynamic_or_absolute(org):
    snoozes = org.dataset.resources["snoozes"]
    kinds = {s["attributes"]["type"]: s["attributes"]["value"] for s in snoozes}
    assert set(kinds) == {"relative", "dynamic", "absolute"}
    assert isinstance(kinds["relative"], int) and isinstance(kinds["absolute"], int)
    assert kinds["dynamic"]["time"] == "09:00 am" and "day" in kinds["dynamic"]
    assert [s["attributes"]["enabled"] for s in snoozes].count(False) == 1
    assert all({"name", "enabled", "type", "value", "createdAt", "updatedAt", "modifiedAt"} <= s["attributes"].keys()
               for s in snoozes)


# --- Attachments ----------------------------------------------------------------------------------------------------


def test_messages_include_attachments_only_when_asked(org):
    plain = ask(org, "/v1/messages", page=2)
    assert plain[1]["data"] == org.dataset.by_id(org.dataset.resources["messages"])[100:200]
    assert "included" not in plain[1] and plain[1]["links"]["next"] == "/v1/messages?page=3&pageSize=100"
    assert all("attachments" not in m["relationships"] for m in plain[1]["data"])
    before = json.dumps(org.dataset.resources["messages"])
    status, page = ask(org, "/v1/messages", include="attachments", page=2)
    assert status == 200 and page["links"]["next"] == "/v1/messages?include=attachments&page=3&pageSize=100"
    assert [m["id"] for m in page["data"]] == [m["id"] for m in plain[1]["data"]]
    with_files = [m for m in page["data"] if "attachments" in m["relationships"]]
    assert 5 <= len(with_files) <= 40 and page["included"]
    assert [a["id"] for m in with_files for a in m["relationships"]["attachments"]["data"]] == \
        [a["id"] for a in page["included"]]
    for message in page["data"]:  # besides relationships.attachments, the very records of the plain page
        plain_one = next(m for m in plain[1]["data"] if m["id"] == message["id"])
        assert {k: v for k, v in message["relationships"].items() if k != "attachments"} == plain_one["relationships"]
        assert message["attributes"] == plain_one["attributes"]
    for attachment in page["included"]:
        message_id = attachment["relationships"]["message"]["data"]["id"]
        assert attachment["type"] == "attachment" and message_id in {m["id"] for m in with_files}
        assert set(attachment["attributes"]) == {"name", "contentType", "contentLength", "redacted"}
        assert attachment["links"]["self"] == f"/v1/messages/{message_id}/attachments/{attachment['id']}"
        assert "X-Amz-Expires=600" in attachment["links"]["related"]
        assert "X-Amz-Date=20261015T000000Z" in attachment["links"]["related"]  # signed at the server's now
        assert ask(org, attachment["links"]["self"]) == (200, {"data": attachment})
    assert json.dumps(org.dataset.resources["messages"]) == before  # the served records are left alone
    assert ask(org, f"/v1/messages/{with_files[0]['id']}/attachments/{'0' * 24}") == (404, NOT_FOUND)


def test_a_conversation_s_attachments_and_a_message_search_with_attachments(org):
    ds = org.dataset
    messages = ds.by_id(ds.resources["messages"])
    message = next(m for m in messages if ds.message_attachments(m))
    conversation = message["relationships"]["conversation"]["data"]["id"]
    expected = [a for m in messages if m["relationships"]["conversation"]["data"]["id"] == conversation
                for a in ds.message_attachments(m)]
    status, page = ask(org, f"/v1/conversations/{conversation}/attachments")
    assert status == 200 and page["data"] == expected and page["links"]["next"] is None
    assert ask(org, f"/v1/conversations/{'0' * 24}/attachments") == (404, NOT_FOUND)
    recent = [m for m in messages if ds.message_attachments(m) and m["attributes"]["updatedAt"] >= "2024-10-15"][:2]
    body = {"queryContext": "message", "and": [{"message_id": {"in": [m["id"] for m in recent]}}]}
    status, found = org.handle("POST", "/v1/customers/search", {"include": "attachments", "pageSize": "1"},
                               AUTH["Authorization"], json.dumps(body).encode())
    [first] = sorted(recent, key=lambda m: (m["attributes"]["updatedAt"], m["id"]))[:1]
    assert status == 200 and found["included"] == ds.message_attachments(first) and len(recent) == 2
    assert [a["id"] for a in found["data"][0]["relationships"]["attachments"]["data"]] == \
        [a["id"] for a in found["included"]]
    assert found["links"]["next"] == "/v1/customers/search?include=attachments&page=2&pageSize=1"
    plain = search(org, body, page_size=1)[1]
    assert "included" not in plain and "attachments" not in plain["data"][0]["relationships"]


def test_attachments_over_http_carry_the_same_bodies(fake):
    served = call(fake, "GET", "/v1/messages?include=attachments&pageSize=50")
    assert served.status == 200 and json.loads(served.body)["included"]


def test_every_stream_is_the_same_in_another_process_whatever_its_hash_seed():
    import os
    import subprocess
    import sys
    script = ("import hashlib, json; from integration_tests.fake_kustomer import Dataset; ds = Dataset(); "
              "print(hashlib.sha1(json.dumps([ds.resources[k] for k in sorted(ds.resources)] "
              "+ [ds.sla_versions, ds.holidays]).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env=os.environ | {"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(digests) == 1
