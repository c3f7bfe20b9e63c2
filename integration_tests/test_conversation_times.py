"""conversation_times at bulk cost, through the real `source-kustomer` command against the fake Kustomer API: time
records searched (context `conversation_time`, 500 a page) within the two years search serves them, by conversation
only for the conversations created before then, by conversation when Kustomer refuses the context, and the state of
the releases that read every time by conversation."""

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from integration_tests import cli, expected
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults
from source_kustomer.components.timestamps import kustomer_timestamp
from source_kustomer.source import load_manifest

REACH = timedelta(days=int(load_manifest()["definitions"]["tuning"]["search_reach"][1:-1]))  # P700D
SIZES = {"conversations": 600, "customers": 100, "users": 10}


def setup(server, **config):
    config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url, **config}
    discovered = cli.run("discover", config).of_type("CATALOG")[0]
    return config, cli.configured_catalog(discovered, ["conversation_times"], incremental=True)


def read(config, catalog, state=None):
    run = cli.run("read", config, catalog, state)
    assert run.returncode == 0 and not run.errors(), run.errors()
    return run


def times(server) -> dict:
    """time record id -> (its createdAt, its conversation)."""
    return {t["id"]: (t["attributes"]["createdAt"], c) for c in server.dataset.all("conversations")
            for t in server.dataset.conversation_times(c)}


def asked_by_conversation(server) -> list[str]:
    return [e["path"].split("/")[3] for e in server.requests_log if e["path"].endswith("/times")]


def recent(server, share: float = 0.5) -> None:
    """Half the conversations created in the last 90 days: their times are search's."""
    data, now = server.dataset, datetime.now(timezone.utc)
    for n, conversation in enumerate(data.all("conversations")[: int(len(data.all("conversations")) * share)]):
        at = kustomer_timestamp(now - timedelta(days=90) + timedelta(hours=3 * n))
        conversation["attributes"]["createdAt"] = at
        data.touch("conversations", [conversation["id"]], at=at)


def test_a_first_sync_searches_what_search_serves_and_asks_by_conversation_only_before_it():
    with FakeKustomer(Dataset(SIZES), faults=Faults(rate_limit=10**6)) as server:
        recent(server)
        config, catalog = setup(server)
        run = read(config, catalog)
        every = times(server)
        got = Counter(r["id"] for r in run.records("conversation_times"))
        assert set(got) == set(every) and max(got.values()) == 1  # every time record, once
        horizon = kustomer_timestamp(datetime.now(timezone.utc) - REACH)
        old = {c["id"] for c in server.dataset.all("conversations") if c["attributes"]["createdAt"] < horizon}
        assert set(asked_by_conversation(server)) == old  # by conversation: only those created before search's reach
        searched = [e for e in server.requests_log if e["path"] == "/v1/customers/search"
                    and e["body"]["queryContext"] == "conversation_time"]
        assert searched and len(searched) <= len(every) // 500 + 30  # a request per 500 records, and the windows
        rows = {r["id"]: r for r in run.records("conversation_times")}
        assert all(rows[i]["conversationId"] == c["id"] for i, (_, c) in every.items())
        assert all(isinstance(rows[i]["handleTime"], int) for i in every)  # seconds, as /times gives them

        # A later sync: the time records created since, searched; none asked by conversation.
        server.requests_log.clear()
        end = expected.sync_end(run)
        created = server.dataset.create("conversations", 40, at=kustomer_timestamp(end - timedelta(hours=20)))
        later = read(config, catalog, run.final_states())
        state_end = expected.sync_end(later)
        lookback = timedelta(minutes=10)
        new = {t["id"] for c in created for t in server.dataset.conversation_times(c)
               if kustomer_timestamp(end - lookback) <= t["attributes"]["createdAt"] <= kustomer_timestamp(state_end)}
        got = Counter(r["id"] for r in later.records("conversation_times"))
        assert new <= set(got) and max(got.values(), default=1) == 1
        assert not asked_by_conversation(server)


def test_a_start_date_inside_search_s_reach_reads_by_search_alone():
    with FakeKustomer(Dataset(SIZES), faults=Faults(rate_limit=10**6)) as server:
        recent(server)
        start = datetime.now(timezone.utc) - timedelta(days=100)
        config, catalog = setup(server, start_date=start.strftime("%Y-%m-%d"))
        run = read(config, catalog)
        wanted = {i for i, (at, _) in times(server).items() if at >= start.strftime("%Y-%m-%d")}
        assert {r["id"] for r in run.records("conversation_times")} == wanted and wanted
        assert not asked_by_conversation(server)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_refused_context_falls_back_to_asking_by_conversation_with_one_warning(status):
    faults = Faults(refuse_contexts=frozenset({"conversation_time"}), refuse_context_status=status, rate_limit=10**6)
    with FakeKustomer(Dataset(SIZES), faults=faults) as server:
        recent(server)
        start = datetime.now(timezone.utc) - timedelta(days=100)
        config, catalog = setup(server, start_date=start.strftime("%Y-%m-%d"))
        run = read(config, catalog)
        changed = {c["id"] for c in server.dataset.all("conversations") if c["attributes"]["updatedAt"] >= start.strftime("%Y-%m-%d")}
        assert set(asked_by_conversation(server)) == changed  # the conversations changed in the window, by conversation
        wanted = {t["id"] for c in server.dataset.all("conversations") if c["id"] in changed for t in server.dataset.conversation_times(c)}
        assert {r["id"] for r in run.records("conversation_times")} == wanted
        assert len([w for w in run.warnings() if "conversation_times:" in w and "one request per conversation" in w]) == 1
        assert cli.stamps(run.final_states()[0]["stream"]["stream_state"])  # the stream completed, its state moved


def test_the_state_of_a_release_that_read_every_time_by_conversation_goes_on_from_there():
    """Releases before 1.3.0 kept `{"use_global_cursor": true, "state": {"conversationUpdatedAt": ...},
    "parent_state": {"conversations": {"updatedAt": ...}}}`: the sync from it reads the conversations changed since,
    by conversation, as they would have, searches the time records created since, and leaves the new state."""
    with FakeKustomer(Dataset(SIZES), faults=Faults(rate_limit=10**6)) as server:
        recent(server)
        since = kustomer_timestamp(datetime.now(timezone.utc) - timedelta(days=60))
        old = {"use_global_cursor": True, "lookback_window": 1, "state": {"conversationUpdatedAt": since},
               "parent_state": {"conversations": {"updatedAt": since}}}
        config, catalog = setup(server)
        state = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "conversation_times"}, "stream_state": old}}]
        run = read(config, catalog, state)
        changed = {c["id"] for c in server.dataset.all("conversations") if c["attributes"]["updatedAt"] >= since[:19]}
        assert set(asked_by_conversation(server)) >= changed and changed  # as the earlier release would have
        assert len(asked_by_conversation(server)) < len(server.dataset.all("conversations"))  # not everything again
        wanted = {i for i, (at, c) in times(server).items() if at >= since or c["id"] in changed}
        assert wanted <= {r["id"] for r in run.records("conversation_times")}
        final = run.final_states()[0]["stream"]["stream_state"]
        assert set(final) == {"createdAt"} and final["createdAt"] > since  # the new shape, moved on
        server.requests_log.clear()
        again = read(config, catalog, run.final_states())
        assert not asked_by_conversation(server) and not again.records("conversation_times")


@pytest.mark.once  # killed and resumed: long, and about the connector, not the Python it runs on
def test_a_first_sync_killed_while_asking_by_conversation_resumes_from_the_list_position():
    from integration_tests.test_checkpoints import killed_after, newest_states

    with FakeKustomer(Dataset({**SIZES, "conversations": 6000}), faults=Faults(rate_limit=10**6)) as server:
        config, catalog = setup(server, lookback_window_minutes=0)
        first = killed_after(config, catalog, "conversation_times", 5_600)
        positions = [m["stream"]["stream_state"] for m in first.of_type("STATE") if "list" in m["stream"]["stream_state"]]
        assert positions, first.of_type("STATE")
        rest = read(config, catalog, newest_states(first))
        got = {r["id"] for r in first.records("conversation_times")} | {r["id"] for r in rest.records("conversation_times")}
        assert got == set(times(server))
        again = {r["id"] for r in first.records("conversation_times")} & {r["id"] for r in rest.records("conversation_times")}
        assert len(again) <= 5_000 + 200  # at most what came after the last state, and a list page of conversations


def test_num_workers_caps_the_stream_s_requests_in_flight_across_the_windows_read_at_once():
    """By conversation, several windows are read at once (the CDK's workers); `num_workers` is the stream's cap."""
    faults = Faults(refuse_contexts=frozenset({"conversation_time"}), rate_limit=10**6, latency=0.05)
    with FakeKustomer(Dataset(SIZES), faults=faults) as server:
        recent(server)
        start = datetime.now(timezone.utc) - timedelta(days=100)
        config, catalog = setup(server, start_date=start.strftime("%Y-%m-%d"), num_workers=2)
        server.stats.most_in_flight = 0
        read(config, catalog)
        assert len(asked_by_conversation(server)) > 100
        workers = load_manifest()["concurrency_level"]["default_concurrency"]
        # At most 2 asking for times, and each other window read at once on one search request.
        assert server.stats.most_in_flight <= 2 + workers - 1, server.stats.most_in_flight
