"""Conversations' analytics fields (analytics.py), worked out again here from the rules in its docstring: what a
warehouse query over synced data should find."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from integration_tests.fake_kustomer import Dataset, FakeKustomer, draws
from integration_tests.fake_kustomer.tests.common import NOW, get, instant

EMPTY = {"createdByTeams": [], "assignedTeams": [], "assignedUsers": []}


def ms(stamp):
    return round(instant(stamp).timestamp() * 1000)


def stamp(milliseconds):
    return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=milliseconds)).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def weekdays(start, end):
    total, t = 0, start
    while t < end:
        day_end = min(end, (t // 86_400_000 + 1) * 86_400_000)
        total += (day_end - t) * (datetime.fromtimestamp(t / 1000, timezone.utc).weekday() < 5)
        t = day_end
    return total


@pytest.fixture(scope="module")
def ds():
    return Dataset()


def expected_of(ds, conversation):
    """The analytics attributes of one conversation, by the documented rules."""
    a, rels = conversation["attributes"], conversation["relationships"]
    u = draws(ds.seed, conversation["id"])
    t0, last = ms(a["createdAt"]), ms(a["modifiedAt"])
    key = lambda r: (r["attributes"]["createdAt"], r["id"])  # noqa: E731
    mine = lambda records: sorted((r for r in records if r["relationships"]["conversation"]["data"]["id"]  # noqa: E731
                                   == conversation["id"]), key=key)
    messages, notes = mine(ds.resources["messages"]), mine(ds.resources["notes"])
    teams = {u_: sorted(t["id"] for t in ds.resources["teams"] if u_ in t["attributes"]["members"])
             for u_ in ds.user_ids}
    assigned = {"assignedTeams": a["assignedTeams"], "assignedUsers": a["assignedUsers"]}
    reply = next((m for m in messages if m["attributes"]["direction"] == "out"
                  and m["attributes"]["createdAt"] >= a["createdAt"]), None)
    response = dict(EMPTY)
    if reply:
        by = reply["relationships"]["createdBy"]["data"]["id"]
        at = ms(reply["attributes"]["createdAt"])
        response = {"id": reply["id"], "createdAt": reply["attributes"]["createdAt"],
                    "sentAt": reply["attributes"]["sentAt"], "createdBy": by, "createdByTeams": teams[by], **assigned,
                    "responseTime": at - t0, "businessTime": weekdays(t0, at), "time": at - t0}
    if a["status"] == "done":
        count = 2 if u[1] < 0.25 else 1
        times, reopened = ([t0 + int((last - t0) * u[2]), last] if count == 2 else [last]), count - 1
    elif u[0] < 0.3:
        count = 2 if u[1] < 0.25 else 1
        first = t0 + int((last - t0) * u[2] / 2)
        times, reopened = ([first, first + int((last - first) * u[3])] if count == 2 else [first]), count
    else:
        count, reopened, times = 0, 0, []
    by = a["assignedUsers"][0] if a["assignedUsers"] else rels["modifiedBy"]["data"]["id"]

    def done(at):
        before = [m for m in messages if ms(m["attributes"]["createdAt"]) <= at]
        return {"createdAt": stamp(at), "createdBy": by, "createdByTeams": teams[by], **assigned, "time": at - t0,
                "businessTime": weekdays(t0, at), "messageCount": len(before),
                "noteCount": sum(ms(n["attributes"]["createdAt"]) <= at for n in notes),
                "outboundMessageCount": sum(m["attributes"]["direction"] == "out" for m in before),
                "lastMessageDirection": before[-1]["attributes"]["direction"] if before else None}

    return {"doneCount": count, "reopenCount": reopened, "firstResponse": response,
            "firstDone": done(times[0]) if times else EMPTY, "lastDone": done(times[-1]) if times else EMPTY}


def test_response_and_done_fields_follow_the_rules(ds):
    for conversation in ds.resources["conversations"]:
        expected = expected_of(ds, conversation)
        got = {k: conversation["attributes"][k] for k in expected}
        assert got == expected, conversation["id"]


def test_the_fields_are_consistent_with_the_conversation(ds):
    conversations = ds.resources["conversations"]
    for c in conversations:
        a = c["attributes"]
        if a["status"] == "done":  # done => lastDone at endedAt
            assert a["lastDone"]["createdAt"] == a["endedAt"] and a["doneCount"] >= 1
        if a["doneCount"]:
            assert a["createdAt"] <= a["firstDone"]["createdAt"] <= a["lastDone"]["createdAt"] <= a["modifiedAt"]
            assert a["lastDone"]["time"] == ms(a["lastDone"]["createdAt"]) - ms(a["createdAt"])
            assert a["lastDone"]["messageCount"] <= a["messageCount"]
        if "id" in a["firstResponse"]:
            assert a["firstResponse"]["responseTime"] == a["firstResponse"]["time"] >= 0
            assert a["firstResponse"]["businessTime"] <= a["firstResponse"]["time"]
            assert a["outboundMessageCount"] >= 1
    statuses = [c["attributes"]["status"] for c in conversations]
    reopened = [c for c in conversations if c["attributes"]["status"] != "done" and c["attributes"]["doneCount"]]
    assert reopened and all(c["attributes"]["reopenCount"] == c["attributes"]["doneCount"] for c in reopened)
    assert sum("id" in c["attributes"]["firstResponse"] for c in conversations) > 50
    assert statuses.count("done") == sum(c["attributes"]["endedAt"] is not None for c in conversations)


def test_about_sixty_percent_have_an_sla_that_points_at_a_served_version(ds):
    conversations = ds.resources["conversations"]
    slas = {s["id"]: s for s in ds.resources["slas"]}
    with_sla = [c for c in conversations if "sla" in c["attributes"]]
    assert 0.5 < len(with_sla) / len(conversations) < 0.7
    assert {c["id"] for c in with_sla} == {c["id"] for c in conversations if draws(ds.seed, c["id"])[4] < 0.6}
    statuses = set()
    for c in with_sla:
        a, rels, sla = c["attributes"], c["relationships"], c["attributes"]["sla"]
        versions = ds.sla_versions[rels["sla"]["data"]["id"]]
        version = next(v for v in versions if v["id"] == rels["slaVersion"]["data"]["id"])
        in_force = [v for v in versions if v["attributes"]["createdAt"] <= a["createdAt"]][-1]
        assert version == in_force and sla["version"] == version["attributes"]["version"]
        assert version["attributes"]["criteria"]["and"][0]["conversation_channel"]["value"] == a["channels"][0]
        assert rels["sla"]["data"]["id"] in slas and sla["matchedAt"] == a["createdAt"]
        breach = ms(a["createdAt"]) + version["attributes"]["metrics"]["firstResponse"]["times"][str(a["priority"])]
        metric = sla["metrics"]["firstResponse"]
        assert metric["breachAt"] == stamp(breach)
        satisfied = a["firstResponse"].get("createdAt")
        assert metric["satisfiedAt"] == satisfied
        if satisfied:
            assert sla["breached"] == (ms(satisfied) > breach)
            assert sla["status"] == ("breached" if sla["breached"] else "achieved")
        else:
            end = ms(a["lastDone"]["createdAt"]) if a["status"] == "done" else ms(a["updatedAt"])
            assert sla["breached"] == (end > breach)
            assert sla["status"] == ("breached" if sla["breached"] else "achieved" if a["status"] == "done" else "active")
        assert sla["summary"]["firstBreachAt"] == (stamp(breach) if sla["breached"] else None)
        assert sla["breach"] == ({"at": stamp(breach), "metric": "firstResponse"} if sla["breached"] else None)
        statuses.add(sla["status"])
    assert statuses == {"breached", "achieved", "active"}
    assert not any({"sla", "slaVersion"} & c["relationships"].keys() for c in conversations if c not in with_sla)


def test_every_conversation_has_a_queue_and_the_old_ones_kept_theirs(ds):
    queues = ds.queue_ids
    for c in ds.resources["conversations"]:
        queue = c["relationships"]["queue"]["data"]["id"]
        assert queue in queues
    assert sum(c["relationships"]["queue"]["data"]["id"] == queues[int(draws(ds.seed, c["id"])[5] * len(queues))]
               for c in ds.resources["conversations"]) < len(ds.resources["conversations"])  # some had one before


def test_the_fields_leave_the_older_attributes_alone_and_serve_as_they_are(ds):
    fake = FakeKustomer(ds, now=NOW)
    conversation = ds.resources["conversations"][7]
    assert get(fake, f"/v1/conversations/{conversation['id']}")[1] == {"data": conversation}
    keys = list(conversation["attributes"])
    assert keys[:keys.index("rev") + 1] == ["name", "preview", "channels", "status", "priority", "direction",
                                             "messageCount", "noteCount", "outboundMessageCount", "tags",
                                             "assignedUsers", "assignedTeams", "custom", "ended", "endedAt", "rev"]
    again = Dataset()
    assert json.dumps(again.resources["conversations"]) == json.dumps(ds.resources["conversations"])


def test_a_created_conversation_gets_the_fields_too():
    fake = FakeKustomer(Dataset(), now=NOW)
    for conversation in fake.dataset.create("conversations", 20, at=NOW):
        a = conversation["attributes"]
        assert a["firstResponse"] == EMPTY and "queue" in conversation["relationships"]
        if a["status"] == "done":
            assert a["lastDone"]["time"] == 0 and a["lastDone"]["messageCount"] == 0
        else:
            assert a["doneCount"] in (0, 1, 2)
