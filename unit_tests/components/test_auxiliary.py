"""components/auxiliary.py: auxiliary reads (typed custom-attribute columns, the klasses naming the per-klass streams)
that fail or are refused leave their feature out with one warning, and every core stream reads."""

import pytest

from unit_tests.conftest import API, TOKEN, UNAUTHORIZED, page, read_stream, resource, warnings_of


def test_metadata_that_keeps_failing_leaves_the_columns_untyped_and_the_stream_reads(api, no_waiting):
    api.get(f"{API}/metadata/customer", status_code=503, json={"errors": [{"status": 503, "title": "Service Unavailable"}]})
    api.get(f"{API}/customers", json=page([resource("customer", 1, custom={"tierStr": "gold"})]))
    output = read_stream("customers")
    assert not output.errors and len(output.records) == 1
    record = output.records[0].record.data
    assert record["custom"] == {"tierStr": "gold"} and "custom_tierStr" not in record
    assert any("custom attributes are not typed" in w for w in warnings_of(output))


@pytest.mark.parametrize("answer", [{"status_code": 503, "json": {"errors": [{"status": 503, "title": "Unavailable"}]}},
                                    {"status_code": 404, "json": {"errors": [{"status": 404, "code": "notfound", "title": "Not Found"}]}},
                                    {"status_code": 401, "json": UNAUTHORIZED}], ids=["503", "404", "401"])
def test_klasses_that_cannot_be_listed_leave_out_the_klass_streams_and_the_others_sync(api, no_waiting, answer):
    api.get(f"{API}/klasses", **answer)
    api.get(TOKEN, json={"data": {"type": "auth_token", "id": "t1"}})
    api.get(f"{API}/tags", json=page([resource("tag", 1)]))
    output = read_stream("tags")
    assert not output.errors and len(output.records) == 1
    assert any("kobjects_<klass>) are left out" in w for w in warnings_of(output))
