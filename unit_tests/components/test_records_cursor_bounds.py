"""Client-side cursor bounds (records.CursorBoundsRecordFilter), and full-refresh reads listed without a cursor."""

import random
from datetime import datetime, timedelta, timezone

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from source_kustomer import SourceKustomer
from source_kustomer.components.records import CursorBoundsRecordFilter as WithinCursorBounds
from source_kustomer.components.timestamps import kustomer_timestamp
from source_kustomer.source import load_manifest
from unit_tests.conftest import API, CONFIG, page, resource

FUTURE = "2099-01-01T00:00:00.000Z"  # after any sync's end


def window(start: str, end: str) -> StreamSlice:
    return StreamSlice(partition={}, cursor_slice={"start_time": start, "end_time": end})


def kept(records: list, stream_slice, cursor_field: str = "updatedAt") -> list:
    bounds = WithinCursorBounds(config={}, parameters={}, cursor_field=cursor_field)
    return [r["id"] for r in bounds.filter_records(records, {}, stream_slice)]


def test_string_comparison_agrees_with_comparing_datetimes():
    # The cursor formats its bounds with microseconds; Kustomer's timestamps have milliseconds.
    rng = random.Random(5)
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for _ in range(200):
        start = base + timedelta(microseconds=rng.randrange(0, 5_000))
        end = start + timedelta(microseconds=rng.randrange(0, 5_000))
        moments = [base + timedelta(milliseconds=rng.randrange(0, 11)) for _ in range(20)]
        records = [{"id": i, "updatedAt": kustomer_timestamp(m)} for i, m in enumerate(moments)]
        bounds = window(start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        assert kept(records, bounds) == [i for i, m in enumerate(moments) if start <= m <= end]


def test_other_timestamp_forms_are_compared_as_moments_and_records_without_one_are_kept():
    bounds = window("2024-01-01T00:00:00.000000Z", "2024-01-31T00:00:00.000000Z")
    records = [
        {"id": "no millis", "updatedAt": "2024-01-15T10:00:00Z"},
        {"id": "offset, inside in UTC", "updatedAt": "2023-12-31T23:00:00-02:00"},
        {"id": "offset, outside in UTC", "updatedAt": "2024-01-01T01:00:00+02:00"},
        {"id": "after", "updatedAt": "2024-02-01T00:00:00Z"},
        {"id": "end itself", "updatedAt": "2024-01-31T00:00:00.000Z"},
        {"id": "missing"},
        {"id": "not a date", "updatedAt": "yesterday"},
    ]
    assert kept(records, bounds) == ["no millis", "offset, inside in UTC", "end itself", "missing", "not a date"]


def test_the_cursor_field_is_configurable_and_a_slice_without_bounds_keeps_everything():
    records = [{"id": "a", "conversationUpdatedAt": FUTURE, "updatedAt": "2024-01-02T00:00:00.000Z"}]
    bounds = window("2024-01-01T00:00:00.000000Z", "2024-01-31T00:00:00.000000Z")
    assert kept(records, bounds) == ["a"]
    assert kept(records, bounds, cursor_field="conversationUpdatedAt") == []
    assert kept(records, StreamSlice(partition={}, cursor_slice={})) == ["a"]
    assert kept(records, None) == ["a"]


def test_a_record_changed_during_the_sync_is_left_to_the_next_incremental_sync_but_kept_by_full_refresh(api):
    now, later = resource("customer", 1), resource("customer", 2, updatedAt=FUTURE)
    api.get(f"{API}/customers", json=page([now, later]))

    def sync(mode: SyncMode):
        catalog = CatalogBuilder().with_stream("customers", mode).build()
        return read(SourceKustomer(catalog, dict(CONFIG), None), dict(CONFIG), catalog)

    full = sync(SyncMode.full_refresh)
    assert [m.record.data["id"] for m in full.records] == [now["id"], later["id"]]
    first = sync(SyncMode.incremental)
    assert [m.record.data["id"] for m in first.records] == [now["id"]]  # after the sync's end: next sync's
    # The state is the sync's end, a minute before it started: the next sync starts there, not at the last record.
    end = datetime.now(timezone.utc) - timedelta(seconds=load_manifest()["definitions"]["tuning"]["index_lag_seconds"])
    state = datetime.strptime(first.most_recent_state.stream_state.updatedAt, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert end - timedelta(minutes=2) < state <= end


@pytest.mark.parametrize("stream", ["customers", "conversation_times"])
def test_full_refresh_reads_without_a_cursor_still_read_everything(api, stream):
    conversation = resource("conversation", 7)
    api.get(f"{API}/customers", json=page([resource("customer", 1)]))
    api.get(f"{API}/conversations", json=page([conversation]))
    api.get(f"{API}/conversations/{conversation['id']}/times", json={"data": {"id": conversation["id"], "attributes": {}}})
    api.post(f"{API}/customers/search", json=page([]))  # conversation_times' last two years: nothing more
    catalog = CatalogBuilder().with_stream(stream, SyncMode.full_refresh).build()
    output = read(SourceKustomer(catalog, dict(CONFIG), None), dict(CONFIG), catalog)
    assert len(output.records) == 1 and not output.errors
