"""Routing: statuses, work sessions and work items as lists and as search contexts (work_session, work_item)."""

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from urllib.parse import parse_qs, urlsplit

from integration_tests.fake_kustomer import (DEFAULT_SIZES, ROUTING_STATUSES, SYSTEM_STATUSES, UNAUTHORIZED,
                                             WORK_ITEM_STATUSES, Dataset, FakeKustomer, Faults)
from integration_tests.fake_kustomer.tests.common import HORIZON, NOW, get, instant, listed, search, search_all, updated


def ms(stamp):
    return round(instant(stamp).timestamp() * 1000)


def weekday_ms(start, end):
    """An oracle for businessTime, independent of the fake's arithmetic: walk the days."""
    total, t = 0, start
    while t < end:
        day_end = min(end, (t // 86_400_000 + 1) * 86_400_000)
        if datetime.fromtimestamp(t / 1000, timezone.utc).weekday() < 5:
            total += day_end - t
        t = day_end
    return total


@pytest.fixture(scope="module")
def org():
    return FakeKustomer(Dataset(), now=NOW)


def every(fake, path):
    """A whole GET list through handle(), following its next links."""
    records, link = [], path + "?pageSize=100"
    while link:
        url = urlsplit(link)
        status, page = fake.handle("GET", url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                                   "Bearer test-api-key")
        assert status == 200, page
        records += page["data"]
        link = page["links"]["next"]
    return records


def test_statuses_are_the_built_in_ones_then_the_org_s_own(org):
    statuses = every(org, "/v1/routing/statuses")
    assert len(statuses) == DEFAULT_SIZES["routing/statuses"] == len(ROUTING_STATUSES)
    assert [s["attributes"]["system"] for s in statuses] == [True] * SYSTEM_STATUSES + [False] * 3
    assert {s["attributes"]["statusType"] for s in statuses} == {"available", "busy", "unavailable", "offline"}
    for status in statuses:
        assert status["type"] == "status" and status["links"]["self"] == f"/v1/routing/statuses/{status['id']}"
        assert {"name", "description", "statusType", "selectable", "system", "enabled", "routable", "createdAt",
                "updatedAt", "modifiedAt"} <= status["attributes"].keys()
        assert ("createdBy" in status["relationships"]) != status["attributes"]["system"]
    assert get(org, statuses[2]["links"]["self"])[1] == {"data": statuses[2]}


def test_work_sessions_are_shifts_with_at_most_one_open_per_user(org):
    ds = org.dataset
    sessions = every(org, "/v1/routing/work-sessions")
    assert sessions == ds.by_id(ds.resources["routing/work-sessions"]) and len(sessions) == 300
    statuses = {s["id"]: s["attributes"] for s in ds.resources["routing/statuses"]}
    users, teams = {u["id"] for u in ds.resources["users"]}, {t["id"] for t in ds.resources["teams"]}
    open_per_user, latest = Counter(), {}
    for session in sessions:
        a, rels = session["attributes"], session["relationships"]
        user = rels["user"]["data"]["id"]
        assert user in users and rels["team"]["data"]["id"] in teams
        assert rels["queues"]["data"] and all(q["id"] in ds.queue_ids for q in rels["queues"]["data"])
        assert a["createdAt"] == a["signedInAt"] and a["updatedAt"] == a["modifiedAt"]
        assert a["active"] == (a["signedOutAt"] is None)
        if a["active"]:
            open_per_user[user] += 1
            assert a["statusType"] != "offline" and a["routable"] == (statuses[rels["status"]["data"]["id"]]["routable"])
        else:
            assert a["signedOutAt"] == a["updatedAt"] and a["statusType"] == "offline" and not a["routable"]
            assert a["workItemCount"] == 0 and a["capacity"] == []
        assert statuses[rels["status"]["data"]["id"]]["statusType"] == a["statusType"]
        assert set(a["totalTimeByStatus"]) <= set(statuses)  # keyed by routing-status ids
        # Milliseconds: the available and unavailable totals make up the whole shift, each status's share too.
        shift = ms(a["updatedAt"]) - ms(a["signedInAt"])
        timed = [e for e in a["totalTimeByStatus"].values() if "time" in e]
        assert sum(e["time"] for e in timed) == shift == a["totalAvailable"]["time"] + a["totalUnavailable"]["time"]
        available = [e for k, e in a["totalTimeByStatus"].items() if statuses[k]["statusType"] == "available"]
        assert a["totalAvailable"]["time"] == sum(e.get("time", 0) for e in available)
        for entry in timed:
            assert 0 <= entry["businessTime"] == weekday_ms(ms(entry["statusAt"]), ms(entry["statusAt"]) + entry["time"])
        assert 3_600_000 // 6 <= shift <= 10 * 3_600_000
        assert a["handledConversationCount"] <= a["handledItemCount"]
        if user in latest:
            assert latest[user]["attributes"]["updatedAt"] < a["signedInAt"]  # shifts never overlap
        latest[user] = session
    assert max(open_per_user.values()) == 1 and 5 <= sum(open_per_user.values()) < len(latest)
    assert all(s["attributes"]["active"] for s in latest.values() if s["relationships"]["user"]["data"]["id"]
               in open_per_user)  # the open one is the user's latest
    assert min(s["attributes"]["updatedAt"] for s in sessions) < "2024"  # some are older than search's horizon


def test_work_items_follow_their_session_and_conversation(org):
    ds = org.dataset
    items = every(org, "/v1/routing/work-items")
    assert len(items) == DEFAULT_SIZES["routing/work-items"]
    sessions = {s["id"]: s for s in ds.resources["routing/work-sessions"]}
    conversations = {c["id"]: c for c in ds.resources["conversations"]}
    open_items = defaultdict(list)
    numbers = defaultdict(list)
    for item in items:
        a, rels = item["attributes"], item["relationships"]
        assert item["type"] == "work_item" and item["links"]["self"] == f"/v1/routing/work-item/{item['id']}"
        assert a["status"] in WORK_ITEM_STATUSES and a["resourceType"] == "conversation"
        conversation = conversations[rels["resource"]["data"]["id"]]
        c = conversation["attributes"]
        assert (a["channel"], a["priority"], a["resourceCreatedAt"], a["resourceDirection"]) == \
            (c["channels"][0], c["priority"], c["createdAt"], c["direction"])
        assert rels["queue"] == conversation["relationships"]["queue"]  # the conversation's queue
        numbers[conversation["id"]].append((a["createdAt"], item["id"], a["workItemNumber"]))
        assert a["createdAt"] == a["firstEnterQueueAt"] <= a["lastRevision"]["enteredQueueAt"]
        revision = a["lastRevision"]
        if a["status"] == "queued":
            assert not {"assignedTo", "acceptedBy", "workSession", "team"} & rels.keys()
            assert revision["routedAt"] is None and a["updatedAt"] == revision["enteredQueueAt"]
        else:
            session = sessions[rels["workSession"]["data"]["id"]]
            agent = session["relationships"]["user"]["data"]["id"]
            assert rels["assignedTo"]["data"]["id"] == agent and rels["team"] == session["relationships"]["team"]
            assert revision["queueTime"] == ms(revision["routedAt"]) - ms(revision["enteredQueueAt"]) > 0
            assert session["attributes"]["signedInAt"] <= revision["routedAt"] <= session["attributes"]["updatedAt"]
            assert ("acceptedBy" in rels) == (a["status"] != "routed")
            if "acceptedBy" in rels:
                assert rels["acceptedBy"]["data"]["id"] == agent
                assert session["attributes"]["signedInAt"] <= revision["acceptedAt"] <= session["attributes"]["updatedAt"]
        if a["status"] == "completed":
            assert a["completedAt"] == a["updatedAt"] <= sessions[rels["workSession"]["data"]["id"]]["attributes"]["updatedAt"]
            handle = a["handle"]
            assert handle["time"] == ms(handle["completedAt"]) - ms(revision["acceptedAt"]) >= 0
            assert a["wrapUp"]["enteredAt"] == handle["completedAt"]
            assert a["wrapUp"]["time"] == ms(a["completedAt"]) - ms(handle["completedAt"])
        else:
            assert a["completedAt"] is None and c["status"] != "done"
            open_items[conversation["id"]].append(item)
    assert open_items and all(len(v) == 1 for v in open_items.values())  # at most one non-completed per conversation
    assert {i["attributes"]["status"] for v in open_items.values() for i in v} == {"queued", "routed", "assigned", "wrap-up"}
    for made in numbers.values():  # numbered per conversation in order of queueing
        assert [n for *_, n in sorted(made)] == list(range(1, len(made) + 1))
    # The sessions count what names them.
    for session in sessions.values():
        mine = [i for i in items if i["relationships"].get("workSession", {}).get("data", {}).get("id") == session["id"]]
        accepted = [i for i in mine if "acceptedBy" in i["relationships"]]
        a = session["attributes"]
        assert a["handledItemCount"] == len(accepted)
        assert a["handledConversationCount"] == len({i["relationships"]["resource"]["data"]["id"] for i in accepted})
        assert a["workItemCount"] == sum(i["attributes"]["status"] in ("routed", "assigned", "wrap-up") for i in mine)


def test_the_routing_lists_are_made_on_first_use_from_the_data_as_built():
    fresh = Dataset()
    assert "routing/work-items" in fresh.resources and fresh.resources._deferred  # not made yet
    changed = Dataset()
    gone = changed.resources["conversations"][0]["id"]
    changed.touch("conversations", [c["id"] for c in changed.resources["conversations"][:50]], at=NOW)
    changed.delete("conversations", [gone], hard=True)
    assert changed.resources._deferred  # neither touch nor delete needed them
    for stream in ("routing/statuses", "routing/work-sessions", "routing/work-items"):
        assert json.dumps(changed.resources[stream]) == json.dumps(fresh.resources[stream])
    assert not fresh.resources._deferred and len(fresh.all("routing/work-items")) == 380


def test_create_touch_and_delete_work_on_routing_records(mutable):
    ds = mutable.dataset
    [item] = ds.create("routing/work-items", 1, at=NOW - timedelta(hours=1))
    assert item["attributes"]["status"] == "queued" and item["attributes"]["createdAt"] == "2026-10-14T23:00:00.000Z"
    conversation = item["relationships"]["resource"]["data"]["id"]
    assert sum(i["attributes"]["status"] != "completed" and i["relationships"]["resource"]["data"]["id"] == conversation
               for i in ds.all("routing/work-items")) == 1
    [session] = ds.create("routing/work-sessions", 1, at=NOW)
    assert session["attributes"]["active"] is False and session["attributes"]["signedOutAt"] == "2026-10-15T00:00:00.000Z"
    assert listed(mutable, "/v1/routing/work-sessions")[-1] == session["id"]
    ds.touch("routing/work-items", [item["id"]], at=NOW)
    found = search_all(mutable, {"queryContext": "work_item", "and": [{"work_item_updated_at": {"gte": "2026-10-15"}}]})
    assert [r["id"] for r in found] == [item["id"]]
    ds.delete("routing/statuses", [ds.resources["routing/statuses"][-1]["id"]], hard=True)
    assert len(listed(mutable, "/v1/routing/statuses")) == 6


@pytest.mark.parametrize("query, expected", [
    ({"active": "true"}, lambda s: s["attributes"]["active"]),
    ({"active": "false"}, lambda s: True),
    ({"statusType": "offline"}, lambda s: s["attributes"]["statusType"] == "offline"),
    ({"statusType": "available", "active": "true"}, lambda s: s["attributes"]["statusType"] == "available"),
    ({"user": "true"}, lambda s: False),  # the key's own (machine) user works no shifts
])
def test_work_session_filters_and_their_links(org, query, expected):
    status, page = org.handle("GET", "/v1/routing/work-sessions", query | {"pageSize": "10"}, "Bearer test-api-key")
    wanted = [s["id"] for s in org.dataset.by_id(org.dataset.resources["routing/work-sessions"]) if expected(s)]
    assert status == 200 and [s["id"] for s in page["data"]] == wanted[:10]
    others = "&".join(f"{k}={v}" for k, v in query.items())
    assert page["links"]["self"] == f"/v1/routing/work-sessions?{others}&page=1&pageSize=10"
    assert page["links"]["next"] == (f"/v1/routing/work-sessions?{others}&page=2&pageSize=10" if len(wanted) > 10
                                     else None)


@pytest.mark.parametrize("query, named", [({"active": "yes"}, "active"), ({"statusType": "lunch"}, "statusType"),
                                          ({"user": "1"}, "user")])
def test_bad_work_session_filters_are_400(org, query, named):
    status, error = org.handle("GET", "/v1/routing/work-sessions", query, "Bearer test-api-key")
    assert status == 400 and error["errors"][0]["source"] == {"parameter": named}


# --- Search ---------------------------------------------------------------------------------------------------------

CONTEXTS = [("work_session", "routing/work-sessions"), ("work_item", "routing/work-items")]


@pytest.mark.parametrize("context, stream", CONTEXTS)
def test_search_finds_the_routing_records_of_the_last_two_years_by_updated_at(org, context, stream):
    records = org.dataset.resources[stream]
    recent = [r for r in records if updated(r) >= HORIZON]
    assert 0 < len(recent) < len(records)
    found = search_all(org, {"queryContext": context}, page_size=50)
    assert [r["id"] for r in found] == [r["id"] for r in sorted(recent, key=lambda r: (updated(r), r["id"]))]
    assert all(json.dumps(r) == json.dumps(next(x for x in records if x["id"] == r["id"])) for r in found[:20])
    archived = search_all(org, {"queryContext": context}, archive=True)
    assert {r["id"] for r in archived} == {r["id"] for r in records if updated(r) < HORIZON}


@pytest.mark.parametrize("context, stream", CONTEXTS)
def test_search_filters_and_sorts_on_updated_at_and_ids(org, context, stream):
    attr = f"{context}_updated_at"
    recent = [r for r in org.dataset.resources[stream] if updated(r) >= HORIZON]
    lo, hi = "2025-03-01", "2026-06-01T00:00:00.000Z"
    window = [{attr: {"gte": lo}}, {attr: {"lt": hi}}]
    desc = search_all(org, {"queryContext": context, "and": window, "sort": [{attr: "desc"}]}, page_size=7)
    expected = [r for r in recent if instant(lo) <= updated(r) < instant(hi)]
    keys = [(-updated(r).timestamp(), r["id"]) for r in desc]
    assert len(desc) > 10 and keys == sorted(keys) and {r["id"] for r in desc} == {r["id"] for r in expected}
    asc = search_all(org, {"queryContext": context, "and": window, "sort": [{attr: "asc"}]})
    assert [r["id"] for r in asc] == [r["id"] for r in sorted(expected, key=lambda r: (updated(r), r["id"]))]
    one = expected[0]
    stamp = one["attributes"]["updatedAt"]
    assert one["id"] in {r["id"] for r in search_all(org, {"queryContext": context, "and": [{attr: {"equals": stamp}}]})}
    assert one["id"] not in {r["id"] for r in search_all(org, {"queryContext": context, "and": [{attr: {"gt": stamp}}]})}
    assert one["id"] in {r["id"] for r in search_all(org, {"queryContext": context, "and": [{attr: {"lte": stamp}}]})}
    by_id = search_all(org, {"queryContext": context, "and": [{f"{context}_id": {"in": [one["id"], expected[1]["id"]]}}]})
    assert sorted(r["id"] for r in by_id) == sorted([one["id"], expected[1]["id"]])


@pytest.mark.parametrize("context", ["work_session", "work_item"])
def test_other_routing_search_attributes_are_400(org, context):
    for body, named in [({"and": [{f"{context}_created_at": {"gte": "2025-01-01"}}]}, f"{context}_created_at"),
                        ({"sort": [{f"{context}_created_at": "asc"}]}, f"{context}_created_at")]:
        status, error = search(org, {"queryContext": context} | body)
        assert status == 400 and error["errors"][0]["source"] == {"parameter": named}


def test_routing_search_meets_the_window_the_timed_out_pages_and_the_index_lag():
    fake = FakeKustomer(Dataset(), now=NOW)
    body = {"queryContext": "work_item"}
    total = search(fake, body, page_size=10)[1]["meta"]["total"]
    fake.faults = Faults(search_window=20)
    assert search(fake, body, page=2, page_size=10)[0] == 200 and search(fake, body, page=3, page_size=10)[0] == 404
    fake.faults = Faults(timed_out_rate=1)
    status, page = search(fake, body, page_size=10)
    assert status == 200 and page["meta"]["timed_out"] is True and len(page["data"]) == 5
    assert page["meta"]["total"] == total
    newest = max(fake.dataset.resources["routing/work-items"], key=lambda r: (updated(r), r["id"]))
    fake.now = updated(newest) + timedelta(seconds=10)
    fake.faults = Faults(index_lag=30)
    assert newest["id"] not in {r["id"] for r in search_all(fake, body)}
    fake.advance(21)
    assert newest["id"] in {r["id"] for r in search_all(fake, body)}


@pytest.mark.parametrize("status, detail", [(403, "Missing role org.permission.work_session.read"),
                                            (401, None)])
def test_routing_contexts_can_be_refused(status, detail):
    fake = FakeKustomer(Dataset(), now=NOW, faults=Faults(refuse_contexts={"work_session", "work_item"},
                                                          refuse_context_status=status))
    answer = search(fake, {"queryContext": "work_session"})
    assert answer[0] == status and (answer[1] == UNAUTHORIZED if status == 401
                                    else answer[1]["errors"][0]["detail"] == detail)
    if status == 403:
        assert search(fake, {"queryContext": "work_item"})[1]["errors"][0]["detail"] == \
            "Missing role org.permission.routing.read"
    assert search(fake, {"queryContext": "conversation"})[0] == 200
    with pytest.raises(ValueError, match="work_sessions"):
        Faults(refuse_contexts={"work_sessions"})
