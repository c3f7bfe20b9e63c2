"""components/pagination.py: `links.next` followed on the API host only (searches and cursor-paged lists)."""

from datetime import datetime, timedelta, timezone

import pytest

from unit_tests.conftest import API, CONFIG, calls, page, read_stream, resource


@pytest.mark.parametrize(
    "next_link", ["https://evil.example.com/v1/customers/search?page=2", "//evil.example.com/v1/customers/search?page=2", "/v1/../../x"]
)
def test_refuses_a_next_link_to_another_host(api, next_link):
    """Searches follow `links.next` (lists are read by page number): on the API host only."""
    api.post(f"{API}/customers/search", json=page([resource("customer", 1)], next_link))
    evil = api.post("https://evil.example.com/v1/customers/search", json=page([]))
    recent = (datetime.now(timezone.utc) - timedelta(days=10)).strftime("%Y-%m-%d")  # searched from the start date
    output = read_stream("customers", {**CONFIG, "start_date": recent})
    assert not evil.called and len(calls(api)) == 1
    assert any("another host" in e.trace.error.message for e in output.errors)


def test_an_absolute_next_link_on_the_api_host_is_followed(api):
    recent = (datetime.now(timezone.utc) - timedelta(days=10)).strftime("%Y-%m-%d")
    api.post(f"{API}/customers/search", [{"json": page([resource("customer", 1)], f"{API}/customers/search?page=2&pageSize=500")},
                                         {"json": page([resource("customer", 2)])}])
    assert len(read_stream("customers", {**CONFIG, "start_date": recent}).records) == 2
