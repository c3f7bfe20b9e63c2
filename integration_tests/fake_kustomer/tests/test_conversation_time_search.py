"""Conversation times by search (queryContext conversation_time), and refused queryContexts."""

import json
from datetime import timedelta

import pytest

from integration_tests.fake_kustomer import UNAUTHORIZED, Dataset, FakeKustomer, Faults
from integration_tests.fake_kustomer.tests.common import HORIZON, NOW, get, instant, search, search_all

CTX = {"queryContext": "conversation_time"}


def created(record):
    return instant(record["attributes"]["createdAt"])


def by_created(records) -> list[str]:
    return [r["id"] for r in sorted(records, key=lambda r: (created(r), r["id"]))]


def listed_times(fake) -> list[dict]:
    """Every conversation's times through GET /v1/conversations/<id>/times."""
    times = []
    for conversation in fake.dataset.all("conversations"):
        status, page = get(fake, f"/v1/conversations/{conversation['id']}/times")
        assert status == 200 and page["links"]["next"] is None
        times += page["data"]
    return times


@pytest.fixture(scope="module")
def times_fake():
    return FakeKustomer(Dataset(), now=NOW)


def test_search_finds_the_very_records_of_the_times_lists_of_the_last_two_years(times_fake):
    every = listed_times(times_fake)
    recent = [t for t in every if created(t) >= HORIZON]
    assert len(every) > len(recent) > 40  # most are older than the horizon (times follow createdAt)
    found = search_all(times_fake, CTX, page_size=50)
    assert [r["id"] for r in found] == by_created(recent)  # default sort: createdAt ascending, then id
    listed_bytes = {t["id"]: json.dumps(t) for t in every}
    assert all(json.dumps(r) == listed_bytes[r["id"]] for r in found)  # byte-identical records
    status, page = search(times_fake, CTX, page_size=50)
    assert status == 200 and page["meta"]["total"] == len(recent) and page["meta"]["timed_out"] is False
    assert {r["type"] for r in found} == {"conversation_time"}
    archived = search(times_fake, CTX, archive=True)  # "older conversation time data is not available via search"
    assert archived[0] == 200 and archived[1]["data"] == [] and archived[1]["meta"]["total"] == 0


def test_filter_and_sort_by_created_at(times_fake):
    recent = [t for t in listed_times(times_fake) if created(t) >= HORIZON]
    lo, hi = "2025-06-01", "2026-01-01T00:00:00.000Z"
    window = [{"conversation_time_created_at": {"gte": lo}}, {"conversation_time_created_at": {"lt": hi}}]
    desc = search_all(times_fake, CTX | {"and": window, "sort": [{"conversation_time_created_at": "desc"}]},
                      page_size=9)
    expected = [t for t in recent if instant(lo) <= created(t) < instant(hi)]
    keys = [(-created(r).timestamp(), r["id"]) for r in desc]
    assert keys == sorted(keys) and {r["id"] for r in desc} == {t["id"] for t in expected} and len(desc) > 10
    asc = search_all(times_fake, CTX | {"and": window, "sort": [{"conversation_time_created_at": "asc"}]})
    assert [r["id"] for r in asc] == by_created(expected)
    one = expected[0]
    equals = [{"conversation_time_created_at": {"equals": one["attributes"]["createdAt"]}}]
    assert one["id"] in {r["id"] for r in search_all(times_fake, CTX | {"and": equals})}
    after = [{"conversation_time_created_at": {"gt": one["attributes"]["createdAt"]}}]
    assert one["id"] not in {r["id"] for r in search_all(times_fake, CTX | {"and": after})}


def test_filter_by_conversation_id(times_fake):
    recent = [t for t in listed_times(times_fake) if created(t) >= HORIZON]
    a, b = sorted({t["relationships"]["conversation"]["data"]["id"] for t in recent})[:2]
    of = {c: [t["id"] for t in recent if t["relationships"]["conversation"]["data"]["id"] == c] for c in (a, b)}
    equals = search_all(times_fake, CTX | {"and": [{"conversation_time_conversation_id": {"equals": a}}]})
    assert sorted(r["id"] for r in equals) == sorted(of[a])
    both = search_all(times_fake, CTX | {"and": [{"conversation_time_conversation_id": {"in": [b, a]}}]})
    assert sorted(r["id"] for r in both) == sorted(of[a] + of[b])


@pytest.mark.parametrize("body, named", [
    (CTX | {"and": [{"conversation_time_updated_at": {"gte": "2025-01-01"}}]}, "conversation_time_updated_at"),
    (CTX | {"and": [{"conversation_time_id": {"equals": "0" * 24}}]}, "conversation_time_id"),
    (CTX | {"sort": [{"conversation_time_handle_time": "asc"}]}, "conversation_time_handle_time"),
    (CTX | {"and": [{"conversation_time_conversation_id": {"gte": "2025-01-01"}}]},
     "conversation_time_conversation_id"),
])
def test_other_attributes_are_400(times_fake, body, named):
    status, error = search(times_fake, body)
    assert status == 400 and error["errors"][0]["source"] == {"parameter": named}


def test_the_two_year_horizon_is_on_created_at_and_moves_with_the_clock():
    fake = FakeKustomer(Dataset(), now=NOW)
    every = listed_times(fake)
    at_horizon = min((t for t in every if created(t) >= HORIZON), key=created)
    just_before = max((t for t in every if created(t) < HORIZON), key=created)
    ids = {r["id"] for r in search_all(fake, CTX)}
    assert at_horizon["id"] in ids and just_before["id"] not in ids
    fake.now = created(at_horizon) + timedelta(days=730)  # the horizon is that time itself: still searchable
    assert at_horizon["id"] in {r["id"] for r in search_all(fake, CTX)}
    fake.advance(0.001)  # a millisecond on, it ages out
    assert at_horizon["id"] not in {r["id"] for r in search_all(fake, CTX)}


def test_the_index_follows_the_conversations_and_makes_only_the_changed_ones_again():
    fake = FakeKustomer(Dataset(), now=NOW)
    ds = fake.dataset
    before = {r["id"]: r for r in search_all(fake, CTX)}
    index = ds.index("conversation-times", "createdAt")
    assert search(fake, CTX)[0] == 200 and ds.index("conversation-times", "createdAt") is index  # kept
    gone, kept = ds.all("conversations")[:2]
    ds.delete("conversations", [gone["id"]], hard=True)
    ds.touch("conversations", [kept["id"]])  # updatedAt only: its times stay as they were
    new = ds.create("conversations", 3, at=NOW - timedelta(days=2))
    after = {r["id"]: r for r in search_all(fake, CTX)}
    assert ds.index("conversation-times", "createdAt") is not index
    gone_times = {t["id"] for t in ds.conversation_times(gone)}
    new_times = [t for c in new for t in ds.conversation_times(c)]
    assert new_times and set(after) == (set(before) - gone_times) | {t["id"] for t in new_times}
    assert all(after[i] is before[i] for i in set(before) - gone_times)  # not made again: the same dicts
    assert [json.dumps(r) for r in search_all(fake, CTX)] == \
        [json.dumps(t) for t in sorted((t for t in listed_times(fake) if created(t) >= HORIZON),
                                       key=lambda t: (created(t), t["id"]))]


@pytest.mark.parametrize("status, body", [
    (401, UNAUTHORIZED),
    (403, {"errors": [{"status": 403, "code": "forbidden", "title": "Forbidden",
                       "detail": "Missing role org.permission.conversation.read"}]}),
    (404, {"errors": [{"status": 404, "code": "notfound", "title": "Not Found"}]}),
    (400, {"errors": [{"status": 400, "source": {"parameter": "queryContext"}, "code": "badparam",
                       "title": "Bad Request", "detail": 'Unknown queryContext "conversation_time"'}]}),
])
def test_a_refused_context_gets_the_chosen_answer_and_the_others_are_served(times_fake, status, body):
    times_fake.faults = Faults(refuse_contexts="conversation_time", refuse_context_status=status)
    try:
        assert search(times_fake, CTX) == (status, body)
        assert search(times_fake, CTX, page=2, archive=True) == (status, body)
        assert search(times_fake, {"queryContext": "conversation"})[0] == 200
        assert get(times_fake, f"/v1/conversations/{times_fake.dataset.all('conversations')[0]['id']}/times")[0] == 200
    finally:
        times_fake.faults = Faults()
    assert search(times_fake, CTX)[0] == 200


def test_other_contexts_can_be_refused_too():
    fake = FakeKustomer(Dataset({k: 3 for k in ("customers", "conversations", "messages", "notes")}), now=NOW,
                        faults=Faults(refuse_contexts={"kobject_order", "note"}, refuse_context_status=403))
    assert search(fake, {"queryContext": "kobject_order"})[1]["errors"][0]["detail"] == \
        "Missing role org.permission.kobject.read"
    assert search(fake, {"queryContext": "note"})[0] == 403
    assert search(fake, {"queryContext": "kobject_subscription"})[0] == search(fake, {"queryContext": "kobject"})[0] == 200
