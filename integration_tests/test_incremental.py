"""Incremental sync through the real `source-kustomer` command against the fake Kustomer API: search windows,
the 100-page cap, ties, the two-year search horizon, interrupted syncs, and a destination kept identical."""

import copy
import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from integration_tests import cli
from integration_tests.expected import after
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults
from source_kustomer.components.records import flatten

SEARCHED = ["customers", "conversations", "messages", "notes", "companies", "kobjects"]
HORIZON = timedelta(days=730)  # search sees records updated within two years


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ago(**delta) -> str:
    return stamp(datetime.now(timezone.utc) - timedelta(**delta))


@pytest.fixture
def org():
    """A fake org of its own per test, since these tests change its data."""
    with FakeKustomer(Dataset({"customers": 400, "messages": 300, "users": 60})) as server:
        yield server


def setup(server, streams, **config):
    config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url, **config}
    discovered = cli.run("discover", config).of_type("CATALOG")[0]
    return config, cli.configured_catalog(discovered, streams, incremental=True)


def expected_row(server, stream, resource):
    row = flatten(copy.deepcopy(resource), custom_columns=stream in ("customers", "conversations", "messages", "companies"))
    if stream == "kobjects":
        row["klassName"] = resource["type"].removeprefix("kobject.")
    return {key: value for key, value in row.items() if value is not None}  # the CDK leaves out top-level nulls


def live(run, stream):
    """The records of a stream without deletion markers (a sync that continues from a state emits those for records
    the fake's audit log says were deleted; test_custom_data.py checks them)."""
    return [r for r in run.records(stream) if not r.get("_ab_cdc_deleted_at")]


def search_requests(server):
    return [entry for entry in server.requests_log if entry["path"] == "/v1/customers/search"]


def test_first_sync_reads_every_record_including_those_older_than_two_years(org):
    config, catalog = setup(org, SEARCHED)
    run = cli.run("read", config, catalog)
    assert not run.errors()
    horizon = stamp(datetime.now(timezone.utc) - HORIZON)
    for stream in SEARCHED:
        got = Counter(r["id"] for r in run.records(stream))
        assert set(got) == {r["id"] for r in org.dataset.all(stream)} and max(got.values()) == 1, stream
    old = [r for r in run.records("customers") if r["updatedAt"] < horizon]
    assert old, "the fake org should hold customers not updated for two years"
    assert {s["stream"]["stream_descriptor"]["name"] for s in run.final_states()} == set(SEARCHED)


def test_second_sync_emits_exactly_what_changed_and_deletions_as_flags(org):
    config, catalog = setup(org, SEARCHED)
    first = cli.run("read", config, catalog)
    boundary = {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"] for s in first.final_states()}

    changed = {}
    rng = random.Random(3)
    for stream in SEARCHED:
        records = org.dataset.all(stream)
        touched = org.dataset.touch(stream, [r["id"] for r in rng.sample(records, 7)], at=after(first, 1))
        made = org.dataset.create(stream, 4, at=after(first, 2), **({"klass": "order"} if stream == "kobjects" else {}))
        changed[stream] = {r["id"] for r in touched + made}
    deleted = org.dataset.delete("customers", [org.dataset.all("customers")[0]["id"]], at=after(first, 3))
    changed["customers"] |= {r["id"] for r in deleted}

    org.requests_log.clear()
    second = cli.run("read", config, catalog, state=first.final_states())
    assert not second.errors()
    for stream in SEARCHED:
        got = Counter(r["id"] for r in live(second, stream))
        assert max(got.values()) == 1, stream
        state = boundary[stream].get("state", boundary[stream])["updatedAt"][:23]
        at_boundary = {r["id"] for r in org.dataset.all(stream) if r["attributes"]["updatedAt"][:23] == state}
        assert changed[stream] <= set(got) <= changed[stream] | at_boundary, stream  # a boundary record once more
    [gone] = [r for r in second.records("customers") if r["id"] == deleted[0]["id"]]
    assert gone["deleted"] is True
    # Besides searches: the klasses list, custom-attribute metadata, and the audit log for deletion markers.
    assert all(entry["path"] in ("/v1/customers/search", "/v1/klasses", "/v1/audit-logs")
               or entry["path"].startswith("/v1/metadata/") for entry in org.requests_log)
    assert {entry["body"]["queryContext"] for entry in search_requests(org)} >= {
        "customer", "conversation", "message", "note", "company", "kobject_order"
    }
    assert all(entry["body"]["includeDeleted"] is True for entry in search_requests(org))


def test_a_recent_start_date_searches_from_it_instead_of_listing_everything(org):
    start = ago(days=200)
    config, catalog = setup(org, ["customers"], start_date=start)
    run = cli.run("read", config, catalog)
    expected = {r["id"] for r in org.dataset.all("customers") if r["attributes"]["updatedAt"] >= start}
    assert expected and {r["id"] for r in run.records("customers")} == expected
    assert search_requests(org) and not [e for e in org.requests_log if e["path"] == "/v1/customers"]
    first_window = min(e["body"]["and"][0]["customer_updated_at"]["gte"] for e in search_requests(org))
    assert first_window[:19] == start[:19]  # windows run concurrently: the earliest one starts at start_date


def test_past_the_page_cap_and_through_a_tie_larger_than_a_page():
    # 3 pages of 500 per query here (Kustomer: 100): 3,000 customers need restarts, one through a 1,200-record tie.
    with FakeKustomer(Dataset({"customers": 3000}), search_page_cap=3) as server:
        ids = [r["id"] for r in server.dataset.all("customers")]
        tie = ago(days=10)
        server.dataset.touch("customers", ids[:1200], at=tie)
        for minutes, chunk in enumerate(range(1200, 3000, 3)):
            server.dataset.touch("customers", ids[chunk : chunk + 3], at=ago(days=10, minutes=minutes + 1))
        config, catalog = setup(server, ["customers"], start_date=ago(days=20)[:10])
        run = cli.run("read", config, catalog)
        got = Counter(r["id"] for r in run.records("customers"))
        assert not run.errors()
        assert set(got) == set(ids) and max(got.values()) == 1  # nothing lost, nothing twice
        starts = [e["body"]["and"][0]["customer_updated_at"]["gte"] for e in search_requests(server)
                  if e["query"].get("page") == "1"]
        assert len(set(starts)) >= 3 and starts == sorted(starts)  # went on from later and later updatedAts
        assert len(search_requests(server)) < 30  # no loop


def test_an_interrupted_sync_resumes_from_its_last_state(org):
    start = ago(days=600)  # about 20 windows of 30 days, each a checkpoint
    config, catalog = setup(org, ["customers"], start_date=start)
    # Killed at the first state past the oldest five records: windows run concurrently, and a state moves only when
    # the earliest window is done, so a count of states says nothing about progress.
    fifth = sorted(r["attributes"]["updatedAt"] for r in org.dataset.all("customers") if r["attributes"]["updatedAt"] >= start)[4]
    interrupted = cli.read_until_state(config, catalog, lambda state: state["stream"]["stream_state"]["updatedAt"][:19] > fifth[:19])
    assert interrupted.returncode != 0 and interrupted.of_type("STATE")
    org.requests_log.clear()
    resumed = cli.run("read", config, catalog, state=interrupted.final_states())
    expected = {r["id"] for r in org.dataset.all("customers") if r["attributes"]["updatedAt"] >= start}
    union = {r["id"] for r in interrupted.records("customers") + live(resumed, "customers")}
    assert union == expected
    assert len(live(resumed, "customers")) < len(expected)  # it did not start over
    resumed_from = min(e["body"]["and"][0]["customer_updated_at"]["gte"] for e in search_requests(org))
    assert resumed_from > start


def test_a_state_in_the_future_reads_nothing_and_a_stale_one_lists_what_changed_since(org):
    config, catalog = setup(org, ["customers", "messages"])

    def state(value):
        return [{"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": {"updatedAt": value}}}
                for name in ("customers", "messages")]

    future = cli.run("read", config, catalog, state=state("2099-01-01T00:00:00.000Z"))
    assert not future.errors() and not future.records()
    org.requests_log.clear()
    since = ago(days=800)  # older than search's window: the list, from the state's time, not from the start
    stale = cli.run("read", config, catalog, state=state(since))
    changed = {r["id"] for r in org.dataset.all("customers") if r["attributes"]["updatedAt"] >= since}
    assert {r["id"] for r in live(stale, "customers")} == changed
    assert changed < {r["id"] for r in org.dataset.all("customers")}  # older ones exist, and were left out
    assert not search_requests(org)


def test_reference_tables_pass_on_only_changed_rows_in_incremental_mode(org):
    config, catalog = setup(org, ["users", "tags"])
    first = cli.run("read", config, catalog)
    assert len(first.records("users")) == len(org.dataset.all("users"))
    touched = org.dataset.touch("users", [u["id"] for u in org.dataset.all("users")[:3]], at=after(first))
    second = cli.run("read", config, catalog, state=first.final_states())
    assert {r["id"] for r in touched} <= {r["id"] for r in second.records("users")}
    assert len(second.records("users")) < 10 and len(second.records("tags")) < 10
    assert not search_requests(org)  # they have no search context: the list is read, the rows filtered


@pytest.mark.once
def test_repeated_incremental_syncs_keep_a_deduplicated_destination_identical_to_kustomer():
    """The issue's definition of done: 100,000 customers with bursts of ties, random changes between syncs, soft
    and hard deletes. Each later sync reads 12,000 changes, past this fake's cap of 20 pages of 500 per query."""
    # A limit far above what the test uses: the default headers (1,000 a minute) would pace the first sync's 1,000
    # pages to two minutes at the default 50% share; pacing has its own tests.
    with FakeKustomer(Dataset({"customers": 100_000}), search_page_cap=20, faults=Faults(rate_limit=10**6)) as server:
        config, catalog = setup(server, ["customers"])
        destination, state, rng = {}, None, random.Random(11)
        for round_ in range(4):
            started = time.monotonic()
            run = cli.run("read", config, catalog, state=state, timeout=900)
            assert not run.errors(), run.errors()
            for row in run.records("customers"):
                if row.get("_ab_cdc_deleted_at"):  # a deletion marker: the destination drops the row
                    destination.pop(row["id"], None)
                else:
                    destination[row["id"]] = row  # append + dedup on `id`: the last version read wins
            expected = {r["id"]: expected_row(server, "customers", r) for r in server.dataset.all("customers")}
            assert destination == expected, f"round {round_}"
            state = run.final_states()

            # Changes happen after this sync began, as in a live org, stamped as the next sync will see them.
            time.sleep(max(0.0, 3 - (time.monotonic() - started)))
            customers = server.dataset.all("customers")
            picked = [c["id"] for c in rng.sample(customers, 12_000)]
            burst = ago(seconds=63)  # a bulk update: 9,000 customers share one updatedAt
            server.dataset.touch("customers", picked[:9_000], at=burst)
            for n, start in enumerate(range(9_000, 12_000, 30)):  # then 3,000 more, 30 per timestamp
                server.dataset.touch("customers", picked[start : start + 30], at=ago(seconds=62.9 - n / 100))
            server.dataset.create("customers", rng.randint(1, 500), at=ago(seconds=61.5))
            deleted = rng.sample(customers, 30)
            server.dataset.delete("customers", [c["id"] for c in deleted[:20]], at=burst)
            server.dataset.delete("customers", [c["id"] for c in deleted[20:]], hard=True, at=ago(seconds=62))


def test_the_acceptance_abnormal_state_reads_nothing(fake):
    """The `incremental` inputs of acceptance-test-config.yml, which the CDK's standard tests do not run yet."""
    import json
    from pathlib import Path

    root = Path(__file__).parent
    config = json.loads((root / "acceptance_config.json").read_text()) | {"base_url": fake.url}  # this run's port
    catalog = json.loads((root / "configured_catalog_incremental.json").read_text())
    state = json.loads((root / "abnormal_state.json").read_text())
    run = cli.run("read", config, catalog, state=state)
    assert not run.errors() and run.returncode == 0
    assert not run.records()
    assert {s["stream"]["stream_descriptor"]["name"] for s in run.final_states()} == {
        s["stream"]["name"] for s in catalog["streams"]
    }
