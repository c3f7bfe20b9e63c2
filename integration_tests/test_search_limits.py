"""Search at its limits, through the real `source-kustomer` command against the fake Kustomer API: whatever Kustomer
answers past its result window (here 1,000 results, 10,000 on the live API), timed-out pages, changes indexed late,
and a `remaining` that does not fall with the sync's requests. Each sync is exact: every record once."""

import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from integration_tests import cli, expected
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults
from source_kustomer.components.timestamps import kustomer_timestamp

SEARCHED = ["customers", "messages"]
SMALL = {"customers": 1500, "messages": 1500, "conversations": 50, "users": 10}


def stamp(moment: datetime) -> str:
    return kustomer_timestamp(moment)


def setup(server, streams, **config):
    config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url, **config}
    discovered = cli.run("discover", config).of_type("CATALOG")[0]
    return config, cli.configured_catalog(discovered, streams, incremental=True)


def read(config, catalog, state=None) -> cli.Run:
    run = cli.run("read", config, catalog, state)
    assert run.returncode == 0 and not run.errors(), run.errors()
    return run


def exact(run, server, stream, since: str) -> Counter:
    """The ids a sync emitted of `stream`: every record updated since `since`, each once."""
    got = Counter(r["id"] for r in run.records(stream))
    wanted = {r["id"] for r in server.dataset.all(stream) if r["attributes"]["updatedAt"] >= since}
    assert set(got) == wanted and max(got.values()) == 1, (stream, len(set(got) ^ wanted), max(got.values()))
    return got


def recent_org(faults: Faults) -> FakeKustomer:
    """1,500 customers and 1,500 messages, all updated in the last two weeks: more than one query of search's result
    window (1,000 here) in one 30-day window."""
    server = FakeKustomer(Dataset(SMALL), faults=faults)
    now = datetime.now(timezone.utc)
    for stream in SEARCHED:
        ids = [r["id"] for r in server.dataset.all(stream)]
        for n in range(0, len(ids), 3):  # three a second: ties at every timestamp
            server.dataset.touch(stream, ids[n:n + 3], at=stamp(now - timedelta(days=14) + timedelta(seconds=n)))
    return server


@pytest.mark.parametrize("answer", ["404", "400", "500", "silent"])
def test_past_the_result_window_a_first_and_a_later_sync_read_every_record_once(answer):
    """Kustomer's answer past its result window is not known: a 404, Elasticsearch's 400 ("Result window is too
    large"), a 500, or a page without a next link before `meta.total` is reached. Each is read on from the last
    updatedAt, in a first sync from a recent start date and in a later one."""
    faults = Faults(search_window=1_000, search_window_answer=answer, rate_limit=10**6)
    with recent_org(faults) as server:
        start = stamp(datetime.now(timezone.utc) - timedelta(days=20))
        config, catalog = setup(server, SEARCHED, start_date=start[:10])
        first = read(config, catalog)
        for stream in SEARCHED:
            exact(first, server, stream, start[:10])
        for context in ("customer", "message"):  # each went on from a later updatedAt at least once
            asked = [e for e in server.requests_log if e["path"] == "/v1/customers/search"
                     and e["body"]["queryContext"] == context]
            assert len({e["body"]["and"][0][f"{context}_updated_at"]["gte"] for e in asked}) >= 2, context

        # 1,200 of each change, more than a query's window again, stamped inside the look-back before the first
        # sync's end (as search would show changes it indexed late): the later sync reads them without waiting.
        end = expected.sync_end(first)
        for stream in SEARCHED:
            ids = [r["id"] for r in server.dataset.all(stream)[:1200]]
            for n in range(0, 1200, 3):
                server.dataset.touch(stream, ids[n:n + 3], at=stamp(end - timedelta(minutes=5) + timedelta(milliseconds=100 * n)))
        later = read(config, catalog, first.final_states())
        for stream in SEARCHED:
            got = Counter(r["id"] for r in later.records(stream))
            assert {r["id"] for r in server.dataset.all(stream)[:1200]} <= set(got) and max(got.values()) == 1


def test_timed_out_pages_are_asked_again_and_nothing_is_lost():
    """A third of search's pages answer `meta.timed_out: true` with half their hits: each is asked again."""
    with recent_org(Faults(timed_out_rate=0.33, rate_limit=10**6)) as server:
        start = stamp(datetime.now(timezone.utc) - timedelta(days=20))
        config, catalog = setup(server, SEARCHED, start_date=start[:10])
        run = read(config, catalog)
        for stream in SEARCHED:
            exact(run, server, stream, start[:10])


@pytest.mark.parametrize("lookback", [10, 0])
def test_a_change_search_indexed_late_is_read_by_the_next_sync_with_the_look_back_and_lost_without_it(lookback):
    """A customer changed 90 s before a sync's end, indexed by search 10 minutes later: the sync cannot see it, and
    its state moves past it. The next sync, searching from 10 minutes before that state, reads it; without the
    look-back it is lost (this test shows both)."""
    with FakeKustomer(Dataset({"customers": 200, "users": 5}), faults=Faults(index_lag=600, rate_limit=10**6)) as server:
        server.now = datetime.now(timezone.utc)  # the fake's clock, which decides what search has indexed
        config, catalog = setup(server, ["customers"], lookback_window_minutes=lookback)
        first = read(config, catalog)  # lists every customer
        late = server.dataset.all("customers")[0]["id"]
        server.dataset.touch("customers", [late], at=stamp(datetime.now(timezone.utc) - timedelta(seconds=90)))
        second = read(config, catalog, first.final_states())  # searched: not indexed yet
        assert late not in {r["id"] for r in second.records("customers")}
        server.advance(600)  # indexed now
        third = read(config, catalog, second.final_states())
        found = late in {r["id"] for r in third.records("customers")}
        assert found == (lookback > 0)
        assert cli.stamps(third.final_states()[0]["stream"]["stream_state"])[0] >= \
            cli.stamps(second.final_states()[0]["stream"]["stream_state"])[0]  # the state never goes back


@pytest.mark.once  # a minute of the budget's windows: long, and about the connector, not the Python
@pytest.mark.parametrize("remaining", ["constant", "alternating"])
def test_a_remaining_that_does_not_fall_never_holds_the_sync_below_its_share(remaining):
    """`x-ratelimit-remaining` that stays at the limit less one (a proxy), or comes from two counters in turn (pods
    behind a load balancer): 60 pages of customers at 50 requests a minute (half of 100) end within 1.5 times the
    minimum the budget allows, rather than one request a minute once the count stops falling."""
    with FakeKustomer(Dataset({"customers": 6000, "users": 5}), faults=Faults(rate_limit=100, remaining=remaining)) as server:
        config, catalog = setup(server, ["customers"], max_api_usage_percent=50)
        server.requests_log.clear()
        began = time.monotonic()
        run = read(config, catalog)
        elapsed, sent = time.monotonic() - began, len(server.requests_log)
        assert len(run.records("customers")) == 6000
        minimum = (-(-sent // 50) - 1) * 60  # its share a minute, the last minute's requests at its start
        assert elapsed <= 1.5 * minimum + 10, (elapsed, minimum, sent)
