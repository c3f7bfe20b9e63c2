"""Checkpoints on a slow API: a state every `checkpoint_seconds` however few records came (lists by position, search
windows within the window), and a full refresh that Airbyte resumes within its job reads on from the position."""

from datetime import datetime, timedelta, timezone

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from source_kustomer import SourceKustomer
from source_kustomer.components.timestamps import kustomer_timestamp
from unit_tests.conftest import API, CONFIG, calls, page, resource, tune
from unit_tests.components.test_substreams import state_of

PAGES = 4


@pytest.fixture
def customers(api):
    """Four pages of 100 customers, read by page number (Kustomer reports `totalPages`)."""
    def serve(request, context):
        number = int(request.qs["page"][0])
        body = page([resource("customer", (number - 1) * 100 + n) for n in range(1, 101)],
                    f"/v1/customers?page={number + 1}" if number < PAGES else None)
        return {**body, "meta": {"page": number, "totalPages": PAGES}}
    api.get(f"{API}/customers", json=serve)
    api.get(f"{API}/audit-logs", json=page([]))  # no deletes meanwhile: a resume starts at the page its state names
    return api


def states(output) -> list[dict]:
    return [m.state.stream.stream_state.__dict__ for m in output.state_messages]


def run(mode: SyncMode, state=None, config=None):
    config, catalog = dict(config or CONFIG), CatalogBuilder().with_stream("customers", mode).build()
    return read(SourceKustomer(catalog, config, state), config, catalog, state)


@pytest.mark.parametrize("mode", [SyncMode.incremental, SyncMode.full_refresh])
def test_a_slow_list_is_checkpointed_by_time_page_by_page(customers, monkeypatch, mode):
    """With the clock past `checkpoint_seconds` after every page, each page read is a checkpoint: its position."""
    tune(monkeypatch, checkpoint_seconds=0)
    output = run(mode)
    assert not output.errors and len(output.records) == PAGES * 100
    positions = [s["list"]["page"] for s in states(output) if "list" in s]
    assert positions == list(range(2, PAGES + 1)), states(output)


def test_without_the_clock_a_short_list_is_one_checkpoint(customers):
    """The same list at full speed: 400 records, under `checkpoint_records`, so no position, only the final state."""
    output = run(SyncMode.incremental)
    assert not output.errors and len(output.records) == PAGES * 100
    assert not [s for s in states(output) if "list" in s], states(output)


def test_a_full_refresh_resumed_within_its_job_reads_on_from_its_position(customers, monkeypatch):
    """Airbyte hands a resumable full refresh's last state to the next attempt of the same job: it reads on from
    the page the state names, not from the first."""
    tune(monkeypatch, checkpoint_seconds=0)
    first = run(SyncMode.full_refresh)
    middle = [s for s in states(first) if s.get("list", {}).get("page") == 3][0]
    customers.reset_mock()
    rest = run(SyncMode.full_refresh, state_of("customers", middle))
    assert not rest.errors
    asked = sorted(int(r.qs["page"][0]) for r in calls(customers) if r.path == "/v1/customers")
    assert asked and min(asked) == 3, asked
    assert {r.record.data["id"] for r in rest.records} == {f"{n:024x}" for n in range(201, PAGES * 100 + 1)}


def test_a_slow_search_window_is_checkpointed_by_time_within_the_window(api, monkeypatch):
    """A first sync from a recent start date searches: with the clock past `checkpoint_seconds` after every record,
    the state moves within the window to the last `updatedAt` read, never past a record not yet emitted."""
    tune(monkeypatch, checkpoint_seconds=0)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=5)
    hits = [resource("customer", n, updatedAt=kustomer_timestamp(start + timedelta(hours=1, minutes=n))) for n in range(1, 251)]

    def search(request, context):
        window = request.json()["and"]
        low, high = (bound["customer_updated_at"][op] for bound, op in zip(window, ("gte", "lte")))
        inside = [h for h in hits if low[:19] <= h["attributes"]["updatedAt"][:19] <= high[:19]]
        number, size = int(request.qs.get("page", ["1"])[0]), int(request.qs.get("pagesize", ["100"])[0])
        more = f"/v1/customers/search?page={number + 1}&pageSize={size}" if number * size < len(inside) else None
        return page(inside[(number - 1) * size:number * size], more)

    api.post(f"{API}/customers/search", json=search)
    output = run(SyncMode.incremental, config={**CONFIG, "start_date": start.strftime("%Y-%m-%d")})
    assert not output.errors and len(output.records) == len(hits)
    emitted, cursors = [], []
    for message in output.get_message_iterator():
        if message.record:
            emitted.append(message.record.data["updatedAt"])
        elif message.state:
            cursors.append((message.state.stream.stream_state.__dict__["updatedAt"], len(emitted)))
    within = [(at, n) for at, n in cursors if 0 < n < len(hits)]
    assert len(within) >= 100, cursors  # a state per record or so, not one per window
    for at, n in within:
        assert at[:19] == max(emitted[:n])[:19], (at, n)  # the last updatedAt read
        assert all(u[:19] >= at[:19] for u in emitted[n:]), (at, n)  # nothing after it is behind it
