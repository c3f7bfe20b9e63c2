"""Issue 18 through the real `source-kustomer` command against the fake Kustomer API: conversation events and forwards
(one request per conversation; later syncs ask only for the conversations that changed and pass on only new rows),
business schedules, and what a key without their roles, or an org without them, gets."""

from datetime import datetime, timezone

import pytest

from integration_tests import cli, expected
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults

SMALL = {"customers": 60, "conversations": 40, "messages": 60, "notes": 10, "users": 20, "tags": 10, "audit-logs": 10}
PER_CONVERSATION = {"conversation_events": "events", "conversation_forwards": "forwards"}  # stream -> path
NEW = [*PER_CONVERSATION, "business_schedules"]
ROLES = {"conversation_events": "org.permission.event.read", "conversation_forwards": "org.permission.draft.read",
         "business_schedules": "org.permission.schedule.read"}


@pytest.fixture(scope="module")
def discovered(fake):
    """One discover for the module: every fake org here has the same klasses, so the same catalog."""
    return cli.run("discover", {"organization": "acme", "api_key": API_KEY, "base_url": fake.url}).of_type("CATALOG")[0]


@pytest.fixture
def org():
    with FakeKustomer(Dataset(SMALL)) as server:
        yield server


@pytest.fixture
def setup(discovered):
    def make(server, streams, incremental=True):
        config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url}
        return config, cli.configured_catalog(discovered, streams, incremental)
    return make


def read(server, config, catalog, state=None):
    run = cli.run("read", config, catalog, state)
    assert run.returncode == 0 and not run.errors(), run.stdout[-3000:]
    return run


def asked(server, path: str) -> list[str]:
    """The conversations whose events or forwards the sync asked for, in order."""
    return [e["path"].split("/")[3] for e in server.requests_log if e["path"].endswith(f"/{path}")]


def state_of(run, stream):
    [state] = [s["stream"]["stream_state"] for s in run.final_states() if s["stream"]["stream_descriptor"]["name"] == stream]
    return state


def test_discover_declares_them_with_their_cursors(discovered):
    streams = {s["name"]: s for s in discovered["streams"]}
    cursors = {"conversation_events": "publishedAt", "conversation_forwards": "updatedAt", "business_schedules": "updatedAt"}
    for name, cursor in cursors.items():
        stream = streams[name]
        assert stream["default_cursor_field"] == [cursor] and stream["source_defined_primary_key"] == [["id"]]
        assert {"id", "type", cursor, "relationships", "orgId", "otherAttributes"} <= stream["json_schema"]["properties"].keys()
    assert {"conversationId", "customerId", "changes", "name"} <= streams["conversation_events"]["json_schema"]["properties"].keys()
    assert {"0", "6"} <= streams["business_schedules"]["json_schema"]["properties"]["hours"]["properties"].keys()


def test_a_first_sync_reads_every_row_once_and_later_ones_only_what_changed(org, setup):
    config, catalog = setup(org, NEW)
    first = read(org, config, catalog)
    conversations = org.dataset.all("conversations")
    for stream in NEW:
        got = [r["id"] for r in first.records(stream)]
        assert got and sorted(got) == sorted(expected.expected_ids(org.dataset, stream)), stream
    # One request per conversation and stream, each conversation once (the fake's lists fit one page).
    for stream, path in PER_CONVERSATION.items():
        assert sorted(asked(org, path)) == sorted(c["id"] for c in conversations), stream

    # Flat rows, with the conversation each belongs to.
    source = {e["id"]: e for c in conversations for e in org.dataset.conversation_events(c)}
    for row in first.records("conversation_events"):
        event = source[row["id"]]
        assert row["type"] == "customer_event" and "attributes" not in row
        assert row["name"] == event["attributes"]["name"] and row["publishedAt"] == event["attributes"]["publishedAt"]
        assert row["conversationId"] == event["relationships"]["conversation"]["data"]["id"]
        assert row["customerId"] == event["relationships"]["customer"]["data"]["id"]
        assert row.get("changes") == event["attributes"].get("changes")  # kept as one object
    assert any(isinstance(r.get("changes"), dict) for r in first.records("conversation_events"))
    listed_under = {r["id"]: c["id"] for c in conversations for r in org.dataset.conversation_forwards(c)}
    for row in first.records("conversation_forwards"):
        assert row["type"] == "forward" and "attributes" not in row
        assert row["conversationId"] == listed_under[row["id"]]  # also where the forward names no conversation
    assert any("conversation" not in row["relationships"] for row in first.records("conversation_forwards"))
    schedules = first.records("business_schedules")
    assert sum(bool(r["default"]) for r in schedules) == 1
    for row in schedules:
        assert set(row["hours"]) == {str(day) for day in range(7)} and row["timezone"]
        assert all(day is None or all(0 <= start < end <= 1440 for start, end in day) for day in row["hours"].values())

    # Two conversations change: a new event each, a new forward on one. Only they are asked for, only that is new.
    at = expected.after(first)
    changed = [c["id"] for c in conversations[5:7]]
    org.dataset.touch("conversations", changed, at=at)  # each gets a new update event, published `at`
    added = org.dataset.add_forward(changed[0], at=at)
    org.requests_log.clear()
    second = read(org, config, catalog, state=first.final_states())
    parent = state_of(first, "conversation_events")["parent_state"]["conversations"]["updatedAt"][:23]
    at_boundary = {c["id"] for c in conversations if c["attributes"]["updatedAt"][:23] == parent}
    for stream, path in PER_CONVERSATION.items():
        assert set(changed) <= set(asked(org, path)) <= set(changed) | at_boundary, stream
    by_id = {c["id"]: c for c in conversations}
    new_events = {e["id"] for c in changed for e in org.dataset.conversation_events(by_id[c])
                  if e["attributes"]["publishedAt"] == at}
    assert len(new_events) == len(changed)
    boundary_events = {e["id"] for c in at_boundary for e in org.dataset.conversation_events(by_id[c])}
    got = {r["id"] for r in second.records("conversation_events")}
    assert new_events <= got <= new_events | boundary_events  # not the changed conversations' older events
    assert {r["id"] for r in second.records("conversation_forwards")} == {added["id"]}
    assert not second.records("business_schedules")  # unchanged
    for stream in PER_CONVERSATION:
        assert state_of(second, stream)["parent_state"]["conversations"]["updatedAt"] > at

    # Nothing changed since: no conversation is asked for, nothing emitted, every state at the sync's end. (The two
    # changes above are inside the default look-back before the second sync's end, which reads them again.)
    org.requests_log.clear()
    idle = read(org, {**config, "lookback_window_minutes": 0}, catalog, state=second.final_states())
    assert not idle.records() and not asked(org, "events") and not asked(org, "forwards")
    assert len(org.requests_log) <= 3 * len(NEW)  # each parent's search, the schedules list
    end = expected.sync_end(idle).strftime("%Y-%m-%dT%H:%M:%S.%f")
    for state in idle.final_states():
        assert max(cli.stamps(state["stream"]["stream_state"])).startswith(end), state


def test_refused_or_missing_each_is_skipped_with_one_warning_the_others_sync_and_it_syncs_once_granted(setup):
    """Events refused as Kustomer documents a missing role (401; unit_tests/test_conversation_activity.py has 403),
    forwards and schedules answered 404, as by an org without them."""
    faults = Faults(forbidden={"conversation-events"}, missing={"conversation-forwards", "schedules"})
    with FakeKustomer(Dataset(SMALL), faults=faults) as server:
        config, catalog = setup(server, [*NEW, "conversations", "conversation_times", "tags"])
        run = read(server, config, catalog)
        assert not any(run.records(stream) for stream in NEW)
        for stream in ("conversations", "conversation_times", "tags"):
            assert sorted(r["id"] for r in run.records(stream)) == sorted(expected.expected_ids(server.dataset, stream))
        [refused] = [w for w in run.warnings() if "Skipped stream conversation_events:" in w]
        assert ROLES["conversation_events"] in refused and "HTTP 401" in refused
        assert len(asked(server, "events")) <= 3  # the three workers' first requests, then none
        assert len([w for w in run.warnings() if "/forwards: Kustomer answered HTTP 404" in w]) == 1
        assert len(asked(server, "forwards")) == len(server.dataset.all("conversations"))  # a 404 is one conversation
        assert len([w for w in run.warnings() if "Skipped stream business_schedules: Kustomer has no" in w]) == 1
        # Refused, events and schedules kept their state: granted, the next sync reads all they hold.
        server.faults = Faults()
        granted = read(server, config, catalog, state=run.final_states())
        for stream in ("conversation_events", "business_schedules"):
            assert sorted(r["id"] for r in granted.records(stream)) == sorted(expected.expected_ids(server.dataset, stream))

        server.faults = Faults(forbidden={"schedules"}, refusal_status=403)
        [check] = cli.run("check", config).of_type("CONNECTION_STATUS")
        assert check["status"] == "SUCCEEDED" and "business_schedules (role org.permission.schedule.read)" in check["message"]


def test_a_conversations_list_interrupted_mid_way_does_not_move_the_substreams_own_reading(setup):
    """The conversations stream's state holds a list position (an interrupted first sync); events and times have no
    state of their own. They read the conversations' list for themselves, from its first page: a position is kept by
    the stream whose state holds it."""
    with FakeKustomer(Dataset({"conversations": 250, "users": 5}), faults=Faults(rate_limit=10**6)) as server:
        config, catalog = setup(server, ["conversations", "conversation_events", "conversation_times"])
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        position = {"updatedAt": "2000-01-01T00:00:00.000Z", "list": {"v": 1, "page": 3, "from": 3, "since": now, "end": now}}
        state = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "conversations"}, "stream_state": position}}]
        run = read(server, config, catalog, state=state)
        assert len(run.records("conversations")) < 100  # from its position, the list's third page
        for stream in ("conversation_events", "conversation_times"):
            assert sorted(r["id"] for r in run.records(stream)) == sorted(expected.expected_ids(server.dataset, stream)), stream
