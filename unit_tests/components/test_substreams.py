"""Conversation events, conversation forwards and business schedules in-process against requests-mock: their schemas,
Kustomer's documented examples (`real_payloads/`) replayed through the connector, pages followed, a conversation
deleted during the sync skipped, only the events published since the state passed on, a refused stream that stops
asking and keeps its state, and a state that cannot be used."""

import re
from datetime import datetime, timedelta, timezone

from airbyte_cdk.models import AirbyteMessage, AirbyteMessageSerializer, AirbyteStateMessageSerializer, SyncMode, Type
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from integration_tests.conformance import violations
from source_kustomer import SourceKustomer
from source_kustomer.components.timestamps import kustomer_timestamp, to_utc
from source_kustomer.source import load_manifest
from unit_tests.conftest import API, CONFIG, LOOKBACK, TOKEN, page, read_stream, resource, tune, warnings_of
from unit_tests.test_replay import body, resources, serve

STREAMS = {"conversation_events": "publishedAt", "conversation_forwards": "updatedAt", "business_schedules": "updatedAt"}
CONVERSATIONS = body("conversations_list.doc.json")
[CONVERSATION] = resources(CONVERSATIONS)  # 58228e05d4e96711004eccb7, whose events Kustomer's example lists


def events_of(number: int, *published: str) -> list[dict]:
    return [resource("customer_event", number * 100 + n, name="kustomer.conversation.update", publishedAt=at)
            for n, at in enumerate(published)]


def state_of(stream: str, blob: dict) -> list:
    return [AirbyteStateMessageSerializer.load({"type": "STREAM", "stream": {"stream_descriptor": {"name": stream},
                                                                             "stream_state": blob}})]


def test_their_schemas_declare_what_the_records_carry():
    schemas = load_manifest()["schemas"]
    for stream, cursor in STREAMS.items():
        assert {"id", "type", cursor, "relationships", "orgId", "otherAttributes"} <= schemas[stream]["properties"].keys()
    assert {"conversationId", "customerId", "name", "changes", "createdById"} <= schemas["conversation_events"]["properties"].keys()
    assert {"conversationId", "status", "from", "to"} <= schemas["conversation_forwards"]["properties"].keys()
    hours = schemas["business_schedules"]["properties"]["hours"]["properties"]
    assert set(hours) == {str(day) for day in range(7)}
    assert all(day["items"]["items"]["type"] == ["null", "integer"] for day in hours.values())


def test_documented_events_forwards_and_schedules_are_read_as_flat_rows(api):
    """Kustomer's three examples, served as they are, in one read that the platform's rules find nothing wrong with."""
    events, forwards = body("conversation_events_list.doc.json"), body("conversation_forwards_list.doc.json")
    schedules = body("schedules_list.doc.json")
    api.get(f"{API}/conversations", json=CONVERSATIONS)
    serve(api, "GET", f"conversations/{CONVERSATION['id']}/events", events)
    serve(api, "GET", f"conversations/{CONVERSATION['id']}/forwards", forwards)
    serve(api, "GET", "schedules", schedules)
    config = dict(CONFIG)
    discovered = SourceKustomer(None, config, None).discover(None, config)
    discovered = AirbyteMessageSerializer.dump(AirbyteMessage(type=Type.CATALOG, catalog=discovered))["catalog"]
    catalog = {"streams": [{"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite",
                            "primary_key": [["id"]]} for s in discovered["streams"] if s["name"] in STREAMS]}
    configured = CatalogBuilder()
    for stream in STREAMS:
        configured = configured.with_stream(stream, SyncMode.full_refresh)
    output = read(SourceKustomer(configured.build(), config, None), config, configured.build())
    assert not output.errors
    broken = violations([AirbyteMessageSerializer.dump(m) for m in output.get_message_iterator()], catalog)
    assert not broken, broken
    rows = {(m.record.stream, m.record.data["id"]): m.record.data for m in output.records}

    for event in resources(events):
        row = rows["conversation_events", event["id"]]
        assert row["type"] == "customer_event" and row["conversationId"] == CONVERSATION["id"]
        assert row["name"] == event["attributes"]["name"] and row["publishedAt"] == event["attributes"]["publishedAt"]
        assert row.get("changes") == event["attributes"].get("changes")  # an object, as Kustomer sends it
        assert (row["customerId"], row["createdById"]) == (event["relationships"]["customer"]["data"]["id"],
                                                            event["relationships"]["createdBy"]["data"]["id"])
    for forward in resources(forwards):
        row = rows["conversation_forwards", forward["id"]]
        named = (forward["relationships"].get("conversation") or {}).get("data", {}).get("id")
        assert row["conversationId"] == (named or CONVERSATION["id"])  # its own, else the conversation it was read from
        assert row["to"] == forward["attributes"]["to"] and row["status"] == "draft"
    [schedule] = resources(schedules)
    row = rows["business_schedules", schedule["id"]]
    assert row["hours"] == schedule["attributes"]["hours"]
    assert (row["timezone"], row["default"], row["orgId"]) == ("America/New_York", False, "5e15fa33623f88001a8e0bb5")
    assert len(rows) == len(resources(events)) + len(resources(forwards)) + 1


def test_every_page_is_read_and_a_conversation_deleted_during_the_sync_is_skipped(api):
    api.get(f"{API}/conversations", json=page([resource("conversation", 1), resource("conversation", 2)]))
    api.get(f"{API}/conversations/{1:024x}/events", status_code=404, json=body("error_404_customer_by_external_id.live.json"))
    second = f"/v1/conversations/{2:024x}/events"
    api.get(f"{API}/conversations/{2:024x}/events", [
        {"json": page(events_of(1, "2024-01-01T00:00:00.000Z"), f"{second}?page=2&pageSize=100")},
        {"json": page(events_of(2, "2024-01-02T00:00:00.000Z"))},
    ])
    output = read_stream("conversation_events")
    assert not output.errors and [m.record.data["conversationId"] for m in output.records] == [f"{2:024x}"] * 2
    assert [r.qs.get("page") for r in api.request_history if r.path == second] == [None, ["2"]]
    assert len([w for w in warnings_of(output) if "HTTP 404" in w]) == 1


def test_a_later_sync_passes_on_only_the_events_published_since_its_state(api):
    """The documented events, read from a state between their times: only the two published after it."""
    # The conversation changed since the parent's state (its first 30-day window); nothing else did.
    api.post(f"{API}/customers/search", [{"json": CONVERSATIONS}, {"json": page([])}])
    serve(api, "GET", f"conversations/{CONVERSATION['id']}/events", body("conversation_events_list.doc.json"))
    catalog = CatalogBuilder().with_stream("conversation_events", SyncMode.incremental).build()
    since = kustomer_timestamp(datetime.now(timezone.utc) - timedelta(days=36))  # the conversations' state: searched
    state = state_of("conversation_events", {"use_global_cursor": True, "lookback_window": 0,
                                             "state": {"publishedAt": "2016-11-09T03:00:00.000Z"},
                                             "parent_state": {"conversations": {"updatedAt": since}}})
    output = read(SourceKustomer(catalog, dict(CONFIG), state), dict(CONFIG), catalog, state)
    assert not output.errors
    assert sorted(m.record.data["publishedAt"] for m in output.records) == [
        "2016-11-09T03:23:34.083Z", "2016-11-09T05:57:07.066Z"]  # not the create event, published 02:46
    searched = [r.json() for r in api.request_history if r.path == "/v1/customers/search"]
    earliest = kustomer_timestamp(to_utc(since) - LOOKBACK)  # searches start a look-back before the state
    assert searched and all(s["and"][0]["conversation_updated_at"]["gte"] >= earliest[:19] for s in searched)
    final = output.most_recent_state.stream_state.__dict__
    assert final["state"]["publishedAt"] > "2026" and final["parent_state"]["conversations"]["updatedAt"] > since


def test_a_key_without_the_event_role_stops_the_stream_at_once_and_keeps_its_state(api):
    """Twenty conversations changed, and the key may not read events (403 here; the integration test has Kustomer's
    401): the stream asks no more than the workers had in flight, warns once, and keeps its state, its parent's
    included, for when the role is granted."""
    api.post(f"{API}/customers/search", [{"json": page([resource("conversation", n) for n in range(1, 21)])},
                                         {"json": page([])}])
    api.get(TOKEN, json={"data": {"type": "auth_token", "id": "t1"}})
    refused = {"errors": [{"status": 403, "code": "forbidden", "title": "Forbidden"}]}
    for n in range(1, 21):
        api.get(f"{API}/conversations/{n:024x}/events", status_code=403, json=refused)
    catalog = CatalogBuilder().with_stream("conversation_events", SyncMode.incremental).build()
    published, updated = (kustomer_timestamp(datetime.now(timezone.utc) - timedelta(days=d)) for d in (67, 36))
    state = state_of("conversation_events", {"use_global_cursor": True, "lookback_window": 0,
                                             "state": {"publishedAt": published},
                                             "parent_state": {"conversations": {"updatedAt": updated}}})
    output = read(SourceKustomer(catalog, dict(CONFIG), state), dict(CONFIG), catalog, state)
    assert not output.errors and not output.records
    assert 1 <= sum(r.path.endswith("/events") for r in api.request_history) <= 3  # the three workers, then none
    [warning] = [w for w in warnings_of(output) if w.startswith("Skipped stream conversation_events")]
    assert "org.permission.event.read" in warning and "HTTP 403" in warning
    assert output.get_stream_statuses("conversation_events")[-1].name == "COMPLETE"
    final = output.most_recent_state.stream_state.__dict__
    assert final["state"]["publishedAt"].startswith(published[:23])  # as given (in microseconds)
    assert final["parent_state"]["conversations"]["updatedAt"].startswith(updated[:23])


def test_an_events_state_that_cannot_be_used_fails_only_that_stream_with_what_to_do(api):
    api.get(f"{API}/schedules", json=page([resource("schedule", 1)]))
    catalog = (CatalogBuilder().with_stream("conversation_events", SyncMode.incremental)
               .with_stream("business_schedules", SyncMode.incremental).build())
    state = state_of("conversation_events", {"use_global_cursor": True, "state": {"publishedAt": "not-a-date"}})
    output = read(SourceKustomer(catalog, dict(CONFIG), state), dict(CONFIG), catalog, state, expecting_exception=True)
    [error] = [e.trace.error.message for e in output.errors]
    assert "state of stream conversation_events cannot be used" in error and "'not-a-date'" in error
    assert [m.record.stream for m in output.records] == ["business_schedules"]


def test_many_changed_conversations_are_checkpointed_as_their_events_are_read_and_resumed_from_any_state(api, monkeypatch):
    """1,200 conversations changed since the state, found by search in `updatedAt` order, one new event each; a state
    every 300 events here (`checkpoint_records`, 5,000 in a sync). Each state's conversations' `updatedAt` is one up to
    which every conversation's events were emitted before it; resumed from one, the sync searches from there on."""
    tune(monkeypatch, checkpoint_records=300)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    since = now - timedelta(days=20)
    changed = {f"{n:024x}": kustomer_timestamp(since + timedelta(minutes=10, seconds=n)) for n in range(1, 1201)}

    def search(request, context):
        window = request.json()["and"]
        low, high = (to_utc(bound["conversation_updated_at"][op]) for bound, op in zip(window, ("gte", "lte")))
        hits = [resource("conversation", int(key, 16), updatedAt=at) for key, at in changed.items() if low <= to_utc(at) <= high]
        number, size = int(request.qs.get("page", ["1"])[0]), int(request.qs.get("pagesize", ["500"])[0])
        more = f"/v1/customers/search?page={number + 1}&pageSize={size}" if number * size < len(hits) else None
        return page(hits[(number - 1) * size:number * size], more)

    api.post(f"{API}/customers/search", json=search)
    api.get(re.compile(re.escape(API) + r"/conversations/[0-9a-f]{24}/events"), json=lambda request, context: page(
        events_of(int(request.path.split("/")[3], 16), changed[request.path.split("/")[3]])))
    catalog = CatalogBuilder().with_stream("conversation_events", SyncMode.incremental).build()
    state = state_of("conversation_events", {"use_global_cursor": True, "lookback_window": 0,
                                             "state": {"publishedAt": kustomer_timestamp(since)},
                                             "parent_state": {"conversations": {"updatedAt": kustomer_timestamp(since)}}})
    output = read(SourceKustomer(catalog, dict(CONFIG), state), dict(CONFIG), catalog, state)
    assert not output.errors and len(output.records) == len(changed), output.records[:2]

    emitted, checkpoints = [], []  # the conversations whose events were emitted, and each state with what came before it
    for message in output.get_message_iterator():
        if message.type == Type.RECORD:
            emitted.append(message.record.data["conversationId"])
        elif message.type == Type.STATE:
            checkpoints.append((message.state.stream.stream_state.__dict__, list(emitted)))
    assert len(checkpoints) >= 4
    for (blob, before), (_, after) in zip(checkpoints, checkpoints[1:]):
        assert len(after) - len(before) <= 300 + 16  # and what the workers read meanwhile
        parent = blob["parent_state"]["conversations"]["updatedAt"]
        assert {key for key, at in changed.items() if at < parent} <= set(before)  # a resume from here loses nothing
        assert not [k for k in before if k not in changed], [k for k in before if k not in changed][:3]
        assert len({key for key in before if changed[key] >= parent}) <= 300 + 100  # and reads little again

    # Resumed from a state mid-way: the search starts at its conversations' updatedAt (less the look-back), and the
    # rest is read.
    blob, before = checkpoints[len(checkpoints) // 2]
    api.reset_mock()
    resumed = state_of("conversation_events", blob)
    rest = read(SourceKustomer(catalog, dict(CONFIG), resumed), dict(CONFIG), catalog, resumed)
    assert not rest.errors
    searched = [r.json()["and"][0]["conversation_updated_at"]["gte"] for r in api.request_history if r.path == "/v1/customers/search"]
    assert min(searched)[:19] == kustomer_timestamp(to_utc(blob["parent_state"]["conversations"]["updatedAt"]) - LOOKBACK)[:19]
    assert set(before) | {m.record.data["conversationId"] for m in rest.records} == set(changed)


def test_a_parent_state_older_than_search_reaches_is_read_from_the_conversations_list(api):
    """Events last synced three years ago: search no longer sees that far back, so the conversations are listed, and
    only those changed since the parent's state are read for."""
    old = kustomer_timestamp(datetime.now(timezone.utc) - timedelta(days=3 * 365))
    listed = [resource("conversation", n, updatedAt=kustomer_timestamp(datetime.now(timezone.utc) - timedelta(days=days)))
              for n, days in ((1, 4 * 365), (2, 2 * 365), (3, 30))]
    api.get(f"{API}/conversations", json=page(listed))
    api.post(f"{API}/customers/search", json=page([]))
    for n in range(1, 4):
        api.get(f"{API}/conversations/{n:024x}/events", json=page(events_of(n, listed[n - 1]["attributes"]["updatedAt"])))
    catalog = CatalogBuilder().with_stream("conversation_events", SyncMode.incremental).build()
    state = state_of("conversation_events", {"use_global_cursor": True, "lookback_window": 0, "state": {"publishedAt": old},
                                             "parent_state": {"conversations": {"updatedAt": old}}})
    output = read(SourceKustomer(catalog, dict(CONFIG), state), dict(CONFIG), catalog, state)
    assert not output.errors
    assert sorted(m.record.data["conversationId"] for m in output.records) == [f"{2:024x}", f"{3:024x}"]
    asked = [r.path.split("/")[3] for r in api.request_history if r.path.endswith("/events")]
    assert sorted(asked) == [f"{2:024x}", f"{3:024x}"]  # not for the conversation unchanged since the state
    assert not [r for r in api.request_history if r.path == "/v1/customers/search"]
