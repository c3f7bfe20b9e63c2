"""Rate limits, faults and refusals through the real `source-kustomer` command against the fake Kustomer API."""

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from integration_tests import cli, expected
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults, Stats

SMALL = {"customers": 300, "conversations": 200, "messages": 300, "users": 40, "tags": 60, "shortcuts": 30}


# Left out of "every stream" here: one request per conversation, or per 30-day window (test_custom_data.py and
# test_conversation_activity.py have them).
MANY_REQUESTS = {"conversation_times", "conversation_events", "conversation_forwards", "audit_logs", "deletions"}


def read(server, streams=None, incremental=False, **config):
    config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url, **config}
    faults, server.faults = server.faults, Faults()  # discover without faults
    discovered = cli.run("discover", config).of_type("CATALOG")[0]
    streams = streams or [s["name"] for s in discovered["streams"] if s["name"] not in MANY_REQUESTS]
    catalog = cli.configured_catalog(discovered, streams, incremental)
    server.faults, server.stats = faults, Stats()  # what the read does, counted from here
    run = cli.run("read", config, catalog)
    assert API_KEY not in run.stdout + run.stderr  # the key never reaches any output
    return run


def expected_ids(server, stream):
    return set(expected.expected_ids(server.dataset, stream))


def logs(run):
    return " ".join(m["message"] for m in run.of_type("LOG"))


def test_a_full_sync_under_faults_and_a_tight_rate_limit_delivers_every_record_exactly_once():
    # Windows of a second, which the reset header says (without it the connector assumes Kustomer's minute).
    faults = Faults(error_rate=0.1, rate_limit=15, rate_window=1.0, reset_header="epoch", seed=5)
    with FakeKustomer(Dataset({**SMALL, "customers": 1500, "messages": 2000}), faults=faults) as server:
        run = read(server, max_api_usage_percent=100)
        assert run.returncode == 0 and not run.errors()
        for stream, records in run.records_by_stream().items():
            counts = Counter(r["id"] for r in records)
            assert set(counts) == expected_ids(server, stream) and max(counts.values()) == 1, stream
        assert sum(server.stats.faults.values()) >= 3  # faults really happened, and were retried
        assert server.stats.max_per_window <= 15 and len(server.stats.windows) > 3


@pytest.mark.once  # pacing takes wall-clock windows: long, and about the connector, not the Python
@pytest.mark.parametrize("reset_header", ["epoch", "delta"])
@pytest.mark.parametrize("others", [0, 6])
def test_the_sync_keeps_to_its_share_of_the_org_budget_and_says_when_it_waits(reset_header, others):
    """20 a window, half for the sync: with nobody else on the org it takes its 10; when agents use 6 it leaves
    them their 10, whoever used the rest."""
    faults = Faults(rate_limit=20, rate_window=2.0, reset_header=reset_header, others_per_window=others)
    with FakeKustomer(Dataset(SMALL), faults=faults) as server:
        run = read(server, max_api_usage_percent=50)
        assert run.returncode == 0 and not run.errors()
        assert server.stats.rate_limited == 0  # paced, never refused
        windows = [w for w in server.stats.windows if w.served]
        assert max(w.served + w.others for w in windows) <= 10 + 1  # the sync's half, + 5% of 20
        assert "Kustomer rate limit: pausing requests for" in logs(run) and "50% kept for agents" in logs(run)


@pytest.mark.once  # a minute's window or two: see above
@pytest.mark.parametrize("reset_header", ["none", "on_429"])
def test_without_reset_headers_the_sync_keeps_to_its_share_of_every_minute(reset_header):
    """As recorded live: no reset header (or one on 429s only), so windows are Kustomer's minute. 20 a minute, half
    for the sync, and the read needs about 15 requests: 10 go at once, the rest after the minute, never more than
    10 + 5% in a minute, and never a 429."""
    faults = Faults(rate_limit=20, reset_header=reset_header)
    with FakeKustomer(Dataset({"customers": 700, "tags": 60}), faults=faults) as server:
        run = read(server, ["customers", "tags", "brands", "teams", "users", "queues"], max_api_usage_percent=50)
        assert run.returncode == 0 and not run.errors()
        for stream in ("customers", "tags", "users"):
            assert {r["id"] for r in run.records(stream)} == expected_ids(server, stream)
        assert server.stats.rate_limited == 0
        counted = [e for e in server.requests_log if e["path"].startswith("/v1/")]
        assert len(counted) > 10  # more than one minute's share, so the sync had to wait
        assert server.stats.max_per_window <= 10 + 1
        elapsed = counted[-1]["at"] - counted[0]["at"]
        assert elapsed <= 1.5 * len(counted) / 10 * 60  # within 1.5x the budget minimum
        assert "Kustomer rate limit: pausing requests for" in logs(run)


@pytest.mark.parametrize("reset_header", ["epoch", "delta"])
def test_429s_are_waited_out_whatever_the_reset_header_means(reset_header):
    faults = Faults(rate_limit=8, rate_window=1.5, reset_header=reset_header)
    with FakeKustomer(Dataset(SMALL), faults=faults) as server:
        run = read(server, ["customers", "messages", "tags"], max_api_usage_percent=100)
        assert run.returncode == 0 and not run.errors()
        assert {s: len(r) for s, r in run.records_by_stream().items()} == {
            s: len(expected_ids(server, s)) for s in ("customers", "messages", "tags")
        }


def test_searches_back_off_from_the_search_limit():
    start = (datetime.now(timezone.utc) - timedelta(days=400)).strftime("%Y-%m-%d")  # ~14 windows of search
    faults = Faults(search_rate_limit=4, rate_window=1.0, reset_header="epoch")
    with FakeKustomer(Dataset(SMALL), faults=faults) as server:
        run = read(server, ["customers"], incremental=True, start_date=start)
        assert run.returncode == 0 and not run.errors()
        expected = {r["id"] for r in server.dataset.all("customers") if r["attributes"]["updatedAt"] >= start}
        assert {r["id"] for r in run.records("customers")} == expected


def test_a_stream_the_key_may_not_read_is_skipped_and_the_others_sync():
    with FakeKustomer(Dataset(SMALL), faults=Faults(forbidden={"notes"})) as server:
        config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url}
        [status] = cli.run("check", config).of_type("CONNECTION_STATUS")
        assert status["status"] == "SUCCEEDED" and "notes (role org.permission.note.read)" in status["message"]
        run = read(server, ["notes", "tags"])
        assert run.returncode == 0 and not run.errors()
        assert not run.records("notes") and len(run.records("tags")) == len(expected_ids(server, "tags"))
        assert "Skipped stream notes" in logs(run) and "org.permission.note.read" in logs(run)


def test_a_next_link_to_another_host_is_never_followed():
    """Lists are read by page number, so their `links.next` is never followed (searches refuse one off the API host:
    unit_tests/test_pagination.py)."""
    with FakeKustomer(Dataset(SMALL), faults=Faults(off_host_next={"customers"})) as server:
        run = read(server, ["customers", "users", "tags"], incremental=True)
        assert run.returncode == 0 and not run.errors()
        assert not any(e["path"].startswith("http") for e in server.requests_log)
        assert len(run.records("customers")) == len(expected_ids(server, "customers"))


def test_a_redirect_to_another_host_is_refused():
    with FakeKustomer(Dataset(SMALL), faults=Faults(redirect={"brands"})) as server:
        run = read(server, ["brands", "teams"])
        assert run.returncode == 1
        assert any("redirected a request to another host" in error for error in run.errors())
        assert len(run.records("teams")) == len(expected_ids(server, "teams"))


@pytest.mark.parametrize("kind", ["500", "502", "503", "reset", "truncated", "html"])
def test_each_kind_of_fault_is_retried(kind):
    streams = ["customers", "conversations", "messages", "users"]
    with FakeKustomer(Dataset(SMALL), faults=Faults(error_rate=0.3, error_kinds=(kind,), seed=3)) as server:
        run = read(server, streams)
        assert run.returncode == 0 and not run.errors()
        assert server.stats.faults[kind] >= 1
        for stream in streams:
            assert sorted(r["id"] for r in run.records(stream)) == sorted(expected_ids(server, stream))


def test_a_slow_api_is_only_slower():
    with FakeKustomer(Dataset(SMALL), faults=Faults(latency=0.05)) as server:
        run = read(server, ["customers", "tags"])
        assert run.returncode == 0 and not run.errors()
        assert sorted(r["id"] for r in run.records("customers")) == sorted(expected_ids(server, "customers"))
