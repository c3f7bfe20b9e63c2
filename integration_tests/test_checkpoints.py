"""First syncs of a big org through the real `source-kustomer` command: lists read with pages requested ahead and
checkpointed by position, search windows checkpointed within, syncs killed (SIGKILL) and resumed from their newest
states, and lists that change while they are read."""

import json
import subprocess
import tempfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from integration_tests import cli, expected
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults
from source_kustomer.source import load_manifest

CHECKPOINT_RECORDS = load_manifest()["definitions"]["tuning"]["checkpoint_records"]

# Long (orgs of 10,000 records, read several times) and about the connector, not the Python it runs on.
pytestmark = pytest.mark.once

BIG = {"customers": 10_500, "messages": 5_050, "conversations": 300, "users": 40}


@pytest.fixture(scope="module")
def org():
    """One fake org for the tests that only read it."""
    with FakeKustomer(Dataset(BIG)) as server:
        yield server


def setup(server, streams, incremental=True, **config):
    config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url, **config}
    discovered = cli.run("discover", config).of_type("CATALOG")[0]
    return config, cli.configured_catalog(discovered, streams, incremental=incremental)


def between_states(run, stream):
    """The records a stream emitted between two of its states, in order (what each state's recordCount says)."""
    counts, current = [], 0
    for message in run.messages:
        if message["type"] == "RECORD" and message["record"]["stream"] == stream:
            current += 1
        elif message["type"] == "STATE" and message["state"]["stream"]["stream_descriptor"]["name"] == stream:
            assert message["state"]["sourceStats"]["recordCount"] == current, message
            counts.append(current)
            current = 0
    return counts + [current]


def killed_after(config, catalog, stream, records, state=None):
    """A `read` killed with SIGKILL once it has printed `records` records of `stream`: no cleanup, no last state."""
    with tempfile.TemporaryDirectory() as folder:
        args = [cli.EXECUTABLE, "read"]
        for flag, value in (("config", config), ("catalog", catalog), ("state", state)):
            if value is not None:
                Path(folder, f"{flag}.json").write_text(json.dumps(value))
                args += [f"--{flag}", str(Path(folder, f"{flag}.json"))]
        lines, seen = [], 0
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
            for line in process.stdout:
                lines.append(line)
                if line.startswith('{"type":"RECORD"') and json.loads(line)["record"]["stream"] == stream:
                    seen += 1
                    if seen == records:
                        process.kill()
                        break
            process.wait(60)
    assert seen == records, f"the sync ended after {seen} {stream} records"
    return cli.Run(subprocess.CompletedProcess(args, process.returncode, "".join(lines), ""))


def newest_states(*runs):
    """What the platform passes to the next attempt: each stream's newest state over the runs, as STATE messages."""
    states = {}
    for run in runs:
        for message in run.of_type("STATE"):
            states[message["stream"]["stream_descriptor"]["name"]] = message
    return [{"type": "STREAM", "stream": m["stream"]} for m in states.values()]


def test_a_list_first_sync_reads_pages_ahead_and_checkpoints_every_stream_as_it_goes(org):
    """Answers take 0.2 s, the budget allows 16 requests a second: pages are in flight at once, with few requests past
    a list's end (customers report their number of pages; messages do not), and a state every 5,000 records."""
    config, catalog = setup(org, ["customers", "messages", "users"], max_api_usage_percent=100)
    org.faults, org.requests_log[:] = Faults(latency=0.2), []
    org.stats.most_in_flight = 0
    try:
        run = cli.run("read", config, catalog)
    finally:
        org.faults = None
    assert run.returncode == 0 and not run.errors(), run.errors()
    assert org.stats.most_in_flight >= 3, org.stats.most_in_flight
    asked = Counter(e["path"] for e in org.requests_log)
    assert asked["/v1/customers"] == 105, asked  # totalPages: not one request past the end
    assert asked["/v1/messages"] <= 51 + 0.02 * 51 + 3, asked
    assert asked["/v1/audit-logs"] <= 2 + 1, asked  # deletes looked for every 100 pages and at a list's end
    for stream, size in (("customers", 10_500), ("messages", 5_050), ("users", 40)):
        assert len({r["id"] for r in run.records(stream)}) == len(run.records(stream)) == size
        counts = between_states(run, stream)
        assert max(counts) <= CHECKPOINT_RECORDS <= 10_000, (stream, counts)  # one list slice: exactly every 5,000
    positions = [m["stream"]["stream_state"] for m in run.of_type("STATE") if m["stream"]["stream_descriptor"]["name"] == "customers"]
    assert [p["list"]["page"] for p in positions if "list" in p] == [51, 101], positions
    assert "list" not in positions[-1] and positions[-1]["updatedAt"] > "2026", positions[-1]  # the end: a cursor


def test_a_list_first_sync_killed_anywhere_resumes_from_its_position(org):
    """Killed twice, mid-way between checkpoints; each attempt starts from the newest states. Every customer arrives,
    and an attempt reads again only what came after the last state it printed."""
    config, catalog = setup(org, ["customers"])
    first = killed_after(config, catalog, "customers", 7_300)
    second = killed_after(config, catalog, "customers", 5_200, state=newest_states(first))
    third = cli.run("read", config, catalog, state=newest_states(first, second))
    assert third.returncode == 0 and not third.errors()
    runs = [first, second, third]
    assert all(m["stream"]["stream_state"] for run in runs for m in run.of_type("STATE"))  # never an empty state
    ids = [[r["id"] for r in run.records("customers")] for run in runs]
    assert set().union(*ids) == {r["id"] for r in org.dataset.all("customers")}
    for before, after, run in ((ids[0], ids[1], first), (ids[1], ids[2], second)):
        emitted_after_state = between_states(run, "customers")[-1]
        assert len(set(before) & set(after)) <= emitted_after_state < CHECKPOINT_RECORDS + 100
    assert len(ids[0]) + len(ids[1]) + len(ids[2]) <= 10_500 + 2 * (CHECKPOINT_RECORDS + 100)
    # The resumed list keeps the first attempt's end, so the next sync searches from there.
    ends = {m["stream"]["stream_state"]["list"]["end"] for run in (first, second) for m in run.of_type("STATE") if "list" in m["stream"]["stream_state"]}
    assert len(ends) == 1
    assert third.final_states()[0]["stream"]["stream_state"]["updatedAt"][:19] == ends.pop()[:19]


@pytest.fixture
def busy_org():
    """An org whose recent month holds 6,000 customer updates, with distinct times."""
    with FakeKustomer(Dataset({"customers": 6_500, "users": 20})) as server:
        now = datetime.now(timezone.utc)
        ids = [r["id"] for r in server.dataset.all("customers")][:6_000]
        for n in range(0, len(ids), 100):
            server.dataset.touch("customers", ids[n:n + 100], at=now - timedelta(days=10, seconds=-n))
        yield server


def test_a_search_first_sync_checkpoints_within_a_window_and_resumes_from_it(busy_org):
    start = (datetime.now(timezone.utc) - timedelta(days=40)).strftime("%Y-%m-%d")
    # No look-back: a resumed search re-reads what came after its state, not the minutes before it too.
    config, catalog = setup(busy_org, ["customers"], start_date=start, lookback_window_minutes=0)
    whole = cli.run("read", config, catalog)
    assert whole.returncode == 0 and not whole.errors()
    assert len(whole.records("customers")) >= 6_000
    assert max(between_states(whole, "customers")) <= 10_000  # windows in parallel each checkpoint every 5,000
    first = killed_after(config, catalog, "customers", 5_500)
    assert any("updatedAt" in m["stream"]["stream_state"] for m in first.of_type("STATE"))
    rest = cli.run("read", config, catalog, state=newest_states(first))
    assert rest.returncode == 0 and not rest.errors()
    got = {r["id"] for r in first.records("customers")} | {r["id"] for r in rest.records("customers")}
    assert got >= {r["id"] for r in whole.records("customers")}
    again = {r["id"] for r in first.records("customers")} & {r["id"] for r in rest.records("customers")}
    assert len(again) <= between_states(first, "customers")[-1] + 100  # plus ties at the checkpoint's updatedAt


@pytest.fixture
def changing_org():
    with FakeKustomer(Dataset({"customers": 3_000, "users": 20})) as server:
        yield server


def test_a_list_that_changes_while_it_is_read_loses_nothing_and_repeats_nothing(changing_org):
    """At page 8 of 30: records added at the head (pushing the rest back) and deleted at the head (pulling them
    forward), and at the tail. Every customer that exists from the start to the end is emitted, once."""
    server, data = changing_org, changing_org.dataset
    config, catalog = setup(server, ["customers"], incremental=False)
    before = [r["id"] for r in data.all("customers")]
    gone = before[:150] + before[-20:]
    done = []

    def change(stream, page):
        if stream == "customers" and page == 8 and not done:
            done.append(page)
            data.create("customers", 40, head=True)
            data.create("customers", 30)
            data.delete("customers", gone, hard=True)

    server.on_list = change
    try:
        run = cli.run("read", config, catalog)
    finally:
        server.on_list = None
    assert done and run.returncode == 0 and not run.errors()
    ids = [r["id"] for r in run.records("customers")]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1][:5]
    assert set(before) - set(gone) <= set(ids)
    assert any("reading them again" in m["message"] for m in run.of_type("LOG")), "the deletes were not noticed"


def test_without_the_audit_log_a_changing_list_warns_once(changing_org):
    server = changing_org
    config, catalog = setup(server, ["customers"], incremental=False)
    server.faults = Faults(missing=frozenset({"audit-logs"}))
    try:
        run = cli.run("read", config, catalog)
    finally:
        server.faults = None
    assert run.returncode == 0 and not run.errors()
    assert len(run.records("customers")) == 3_000
    warned = [w for w in run.warnings() if "audit log" in w and "customers" in w]
    assert len(warned) == 1, run.warnings()


def test_kobjects_of_every_klass_resume_klass_by_klass():
    """The kobjects of all klasses in one stream (one partition per klass): each klass keeps its position in the
    state, and a klass read whole is not read again."""
    with FakeKustomer(Dataset({"kobject.order": 7_000, "kobject.subscription": 3_000, "users": 20})) as server:
        config, catalog = setup(server, ["kobjects"])
        first = killed_after(config, catalog, "kobjects", 8_500)
        [position] = [m["stream"]["stream_state"] for m in first.of_type("STATE")][-1:]
        assert position["list"]["klasses"] or position["list"]["done"], position
        rest = cli.run("read", config, catalog, state=newest_states(first))
        assert rest.returncode == 0 and not rest.errors()
        ids = [r["id"] for r in first.records("kobjects")], [r["id"] for r in rest.records("kobjects")]
        assert set(ids[0]) | set(ids[1]) == {r["id"] for r in server.dataset.all("kobjects")}
        assert len(set(ids[0]) & set(ids[1])) <= between_states(first, "kobjects")[-1] + 100
        done = {r["klassName"] for r in first.records("kobjects")} & set(position["list"]["done"])
        assert not done & {r["klassName"] for r in rest.records("kobjects")}  # a klass read whole is not read again


def test_a_per_conversation_stream_resumes_from_the_conversations_list_position_its_state_holds():
    """3,000 conversations, about 5,500 events, one request per conversation. The events' state holds the position in
    the conversations' list up to which every conversation's events are read: killed past the first checkpoint, the
    sync resumes there, and reads again only what came after that state."""
    with FakeKustomer(Dataset({"conversations": 3_000, "users": 20}), faults=Faults(rate_limit=10**6)) as server:
        config, catalog = setup(server, ["conversation_events"])
        first = killed_after(config, catalog, "conversation_events", CHECKPOINT_RECORDS + 300)
        assert max(between_states(first, "conversation_events")) <= CHECKPOINT_RECORDS + 100  # + what workers read meanwhile
        parent = first.of_type("STATE")[-1]["stream"]["stream_state"]["parent_state"]["conversations"]
        assert parent["list"]["page"] > 10, parent  # a position well into the list, which the list's state does not have
        server.requests_log[:] = []
        rest = cli.run("read", config, catalog, state=newest_states(first))
        assert rest.returncode == 0 and not rest.errors()
        conversations = [c["id"] for c in server.dataset.all("conversations")]
        asked = [e["path"].split("/")[3] for e in server.requests_log if e["path"].endswith("/events")]
        assert set(asked) <= set(conversations[(parent["list"]["page"] - 1) * 100:])  # from the position
        ids = [r["id"] for r in first.records("conversation_events")], [r["id"] for r in rest.records("conversation_events")]
        assert set(ids[0]) | set(ids[1]) == set(expected.expected_ids(server.dataset, "conversation_events"))
        assert len(set(ids[0]) & set(ids[1])) <= between_states(first, "conversation_events")[-1] + 2 * 100 * 4
        # The resumed list keeps the first attempt's end: the next sync searches the conversations from there.
        final = rest.final_states()[0]["stream"]["stream_state"]
        assert final["parent_state"]["conversations"]["updatedAt"][:19] == parent["list"]["end"][:19]


def test_kobjects_searched_klass_by_klass_resume_from_what_each_klass_read():
    """A first sync from a recent start date searches each klass window by window, under one cursor for all klasses
    that moves only at the end: the state says what each klass's windows have read (`search`), and a resume reads on
    from there."""
    with FakeKustomer(Dataset({"kobject.order": 6_000, "kobject.subscription": 1_500, "users": 20}),
                      faults=Faults(rate_limit=10**6)) as server:
        now = datetime.now(timezone.utc)
        ids = [r["id"] for r in server.dataset.all("kobjects")]
        for n in range(0, len(ids), 50):
            server.dataset.touch("kobjects", ids[n:n + 50], at=now - timedelta(days=12, seconds=-n))
        start = (now - timedelta(days=40)).strftime("%Y-%m-%d")
        config, catalog = setup(server, ["kobjects"], start_date=start, lookback_window_minutes=0)
        first = killed_after(config, catalog, "kobjects", CHECKPOINT_RECORDS + 500)
        searched = [m["stream"]["stream_state"] for m in first.of_type("STATE") if "search" in m["stream"]["stream_state"]]
        assert searched and searched[-1]["search"]["klasses"], first.of_type("STATE")
        assert max(between_states(first, "kobjects")) <= CHECKPOINT_RECORDS + 100
        rest = cli.run("read", config, catalog, state=newest_states(first))
        assert rest.returncode == 0 and not rest.errors()
        ids = [r["id"] for r in first.records("kobjects")], [r["id"] for r in rest.records("kobjects")]
        assert set(ids[0]) | set(ids[1]) == set(r["id"] for r in server.dataset.all("kobjects"))
        assert len(set(ids[0]) & set(ids[1])) <= between_states(first, "kobjects")[-1] + 100
        final = rest.final_states()[0]["stream"]["stream_state"]
        assert "search" not in final and final["state"]["updatedAt"] > start

        # A later sync (the incremental stream's search), after every kobject changed: the same, from its state.
        ids = [r["id"] for r in server.dataset.all("kobjects")]
        for n in range(0, len(ids), 50):
            server.dataset.touch("kobjects", ids[n:n + 50], at=expected.after(rest, 1 + n // 50))  # the next sync's
        later = killed_after(config, catalog, "kobjects", CHECKPOINT_RECORDS + 500, state=rest.final_states())
        assert any("search" in m["stream"]["stream_state"] for m in later.of_type("STATE"))
        resumed = cli.run("read", config, catalog, state=newest_states(rest, later))
        assert resumed.returncode == 0 and not resumed.errors()
        got = {r["id"] for r in later.records("kobjects")} | {r["id"] for r in resumed.records("kobjects")}
        assert got == set(ids)
        assert len({r["id"] for r in later.records("kobjects")} & {r["id"] for r in resumed.records("kobjects")}) <= \
            between_states(later, "kobjects")[-1] + 100
