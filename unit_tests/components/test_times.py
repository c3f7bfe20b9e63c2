"""components/times.py: conversation_times searched where search serves them, by conversation where it does not."""

from datetime import datetime, timedelta, timezone

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from source_kustomer import SourceKustomer
from source_kustomer.components.timestamps import kustomer_timestamp
from unit_tests.conftest import API, CONFIG, page, resource

NOW = datetime.now(timezone.utc)


def time_record(n, conversation, at):
    record = resource("conversation_time", n, createdAt=at, handleTime=60)
    record["relationships"]["conversation"] = {"data": {"type": "conversation", "id": conversation}}
    return record


def sync(config):
    catalog = CatalogBuilder().with_stream("conversation_times", SyncMode.incremental).build()
    return read(SourceKustomer(catalog, config, None), config, catalog)


def test_a_first_sync_searches_the_last_two_years_and_asks_only_older_conversations(api):
    old, new = resource("conversation", 1, createdAt="2019-01-01T00:00:00.000Z"), resource("conversation", 2, createdAt=kustomer_timestamp(NOW - timedelta(days=5)))
    api.get(f"{API}/conversations", json=page([old, new]))
    api.get(f"{API}/audit-logs", json=page([]))
    asked = api.get(f"{API}/conversations/{old['id']}/times", json=page([time_record(10, old["id"], "2019-01-02T00:00:00.000Z")]))
    recent = time_record(20, new["id"], kustomer_timestamp(NOW - timedelta(days=4)))

    def search(request, context):  # the windows' bounds, as Kustomer applies them
        low, high = (c["conversation_time_created_at"][op] for c, op in zip(request.json()["and"], ("gte", "lte")))
        return page([recent] if low[:19] <= recent["attributes"]["createdAt"][:19] <= high[:19] else [])

    searched = api.post(f"{API}/customers/search", json=search)
    output = sync(dict(CONFIG))
    assert not output.errors and asked.call_count == 1 and searched.called
    assert sorted(m.record.data["id"] for m in output.records) == [f"{10:024x}", f"{20:024x}"]
    assert all(r.json()["queryContext"] == "conversation_time" for r in searched.request_history)


def test_a_refused_context_reads_each_changed_conversation_with_one_warning(api):
    start = NOW - timedelta(days=10)
    changed = resource("conversation", 3, updatedAt=kustomer_timestamp(NOW - timedelta(days=2)))

    def search(request, context):
        if request.json()["queryContext"] == "conversation_time":
            context.status_code = 400
            return {"errors": [{"status": 400, "code": "badparam", "title": "Bad Request", "detail": "Unknown queryContext"}]}
        return page([changed])

    api.post(f"{API}/customers/search", json=search)
    times = api.get(f"{API}/conversations/{changed['id']}/times", json=page([time_record(30, changed["id"], kustomer_timestamp(NOW - timedelta(days=2)))]))
    output = sync({**CONFIG, "start_date": start.strftime("%Y-%m-%d")})
    assert not output.errors and times.called and [m.record.data["id"] for m in output.records] == [f"{30:024x}"]
    warnings = [m.log.message for m in output.logs if m.log.level.value == "WARN" and "one request per conversation" in m.log.message]
    assert len(warnings) == 1 and "Unknown queryContext" in warnings[0]
