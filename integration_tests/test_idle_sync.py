"""What an incremental sync costs when little or nothing changed, through the real command against the fake Kustomer
API: a few requests per stream, the same at ten times the data, and for a few changes what they need. Every request
comes out of the budget the org's agents share, and users schedule these syncs every few minutes."""

from collections import Counter

import pytest

from integration_tests import cli, expected
from integration_tests.fake_kustomer import API_KEY, DEFAULT_SIZES, Dataset, FakeKustomer, Faults

# Syncs ten times the default data: long, and about the connector rather than the Python it runs on.
pytestmark = pytest.mark.once

# What grows with an org's activity; its configuration (users, teams, tags, shortcuts, ...) is its own size.
DATA = ("customers", "companies", "conversations", "messages", "notes", "audit-logs", "kobject.order", "kobject.subscription")


def org(scale: int) -> FakeKustomer:
    # The first sync reads every conversation's times: a limit it never reaches keeps the set-up out of the budget.
    return FakeKustomer(Dataset({name: DEFAULT_SIZES[name] * scale for name in DATA}), faults=Faults(rate_limit=10**6))


# Also read once per conversation, like conversation_times, which stands for them here: at ten times the data their
# first syncs alone would make 6,000 requests. test_conversation_activity.py tests their idle syncs.
LEFT_OUT = {"conversation_events", "conversation_forwards"}
FULL_REFRESH_ONLY = {"slas", "sla_versions"}  # SLAs carry no update time: read whole every sync (a few requests)


def first_sync(server):
    config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url}
    discovered = cli.run("discover", config).of_type("CATALOG")[0]
    catalog = cli.configured_catalog(discovered, [s["name"] for s in discovered["streams"] if s["name"] not in LEFT_OUT],
                                     incremental=True)
    first = cli.run("read", config, catalog)
    assert first.returncode == 0 and not first.errors()
    return config, catalog, first


def requests_of(server) -> Counter:
    return Counter("/v1/conversations/{id}/times" if e["path"].endswith("/times") else e["path"] for e in server.requests_log)


@pytest.fixture(scope="module")
def idle():
    """For each size: the first sync, then one with nothing changed in between, and what that one asked."""
    result = {}
    for scale in (1, 10):
        with org(scale) as server:
            config, catalog, first = first_sync(server)
            server.requests_log.clear()
            second = cli.run("read", config, catalog, state=first.final_states())
            result[scale] = catalog, first, second, requests_of(server)
    return result


def test_an_idle_sync_costs_a_few_requests_per_stream_whatever_the_size_of_the_org(idle):
    catalog, _, second, small = idle[1]
    *_, large = idle[10]
    streams = len(catalog["streams"])
    assert second.returncode == 0 and not second.errors()
    assert sum(small.values()) <= 3 * streams, small
    assert abs(sum(large.values()) - sum(small.values())) <= 3, (small, large)
    # the klass streams, the kobjects partitions, the klasses stream, custom_attribute_metadata's klasses
    assert small["/v1/klasses"] <= 4, small


def test_an_idle_sync_emits_nothing_and_every_state_moves_to_its_end(idle):
    for scale, (catalog, first, second, _) in idle.items():
        whole = {s["stream"]["name"] for s in catalog["streams"] if s["sync_mode"] == "full_refresh"}  # slas: no cursor
        assert whole == FULL_REFRESH_ONLY
        assert not [r for r in second.of_type("RECORD") if r["stream"] not in whole], Counter(r["stream"] for r in second.of_type("RECORD"))
        states = {s["stream"]["stream_descriptor"]["name"] for s in second.final_states()}
        assert states == {s["stream"]["name"] for s in catalog["streams"]}
        # Every state is where its sync stopped, windows without records included: the latest cursor in it (a
        # substream's parent, whose changes drive it) at the sync's end, none before the previous sync's end.
        assert expected.sync_end(second) > expected.sync_end(first)
        for run, since in ((first, None), (second, expected.sync_end(first))):
            end = expected.sync_end(run).strftime("%Y-%m-%dT%H:%M:%S.%f")
            for state in run.final_states():
                if state["stream"]["stream_descriptor"]["name"] in whole:
                    continue
                stamps = cli.stamps(state["stream"]["stream_state"])
                assert max(stamps).startswith(end), (scale, state)
                assert since is None or min(stamps) >= since.strftime("%Y-%m-%dT%H:%M:%S.%f"), (scale, state)


def test_a_few_changes_cost_what_they_need(idle):
    """Ten conversations change: CSAT rows are read for those ten, not for the org, and handle times are searched (none
    asked by conversation)."""
    *_, idle_requests = idle[1]
    with org(1) as server:
        config, catalog, first = first_sync(server)
        changed = [c["id"] for c in server.dataset.all("conversations")[:10]]
        server.dataset.touch("conversations", changed, at=expected.after(first))
        server.requests_log.clear()
        second = cli.run("read", config, catalog, state=first.final_states())
        asked = requests_of(server)
    assert not second.errors()
    assert {r["id"] for r in second.records("conversations")} == set(changed)
    assert asked["/v1/conversations/{id}/times"] == 0
    conversations = {c["id"]: c["attributes"] for c in server.dataset.all("conversations")}
    with_csat = {c for c in changed if (conversations[c].get("satisfactionLevel") or {}).get("status")}
    assert {r["id"] for r in second.records("satisfaction_responses")} == with_csat
    assert sum(asked.values()) <= sum(idle_requests.values()) + 3
