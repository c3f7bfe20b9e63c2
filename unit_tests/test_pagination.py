"""Pagination: largest page size, relative `links.next` followed on the API host only, stop on null or empty."""

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from unit_tests.conftest import API, CONFIG, calls, page, read_stream, resource


@pytest.mark.parametrize("stream, size", [("customers", 100), ("conversations", 100), ("users", 500), ("teams", 500)])
def test_lists_are_read_by_page_number_with_the_largest_page(api, stream, size):
    api.get(f"{API}/{stream}", json=page([]))
    read_stream(stream)
    assert calls(api)[0].qs == {"page": ["1"], "pagesize": [str(size)]}


def test_lists_are_read_page_by_page_until_a_page_has_no_next_link(api):
    for n, link in ((1, "/v1/tags?page=2"), (2, "/v1/tags?page=3"), (3, None)):
        api.get(f"{API}/tags?page={n}&pageSize=100", complete_qs=True, json=page([resource("tag", n)], link))
    output = read_stream("tags")
    assert [m.record.data["id"] for m in output.records] == [f"{n:024x}" for n in (1, 2, 3)]
    assert len(calls(api)) == 3


def test_stops_on_an_empty_page_that_still_links_onwards(api):
    api.get(f"{API}/brands?page=1&pageSize=100", complete_qs=True, json=page([resource("brand", 1)], "/v1/brands?page=2"))
    api.get(f"{API}/brands?page=2&pageSize=100", complete_qs=True, json=page([], "/v1/brands?page=3"))
    output = read_stream("brands")
    assert len(output.records) == 1 and len(calls(api)) == 2


def test_a_list_that_ignores_the_page_number_fails_rather_than_loops(api):
    api.get(f"{API}/shortcuts", json=page([resource("shortcut", 1)], "/v1/shortcuts?page=2"))
    output = read_stream("shortcuts")
    assert len(output.records) == 1 and len(calls(api)) <= 4 + 3
    assert any("already read" in e.trace.error.message for e in output.errors)


def test_lists_keep_a_base_url_path_prefix(api):
    proxy = "https://proxy.example.com/kustomer/v1"
    api.get(f"{proxy}/notes?page=1&pageSize=100", complete_qs=True, json=page([resource("note", 1)], "/v1/notes?page=2"))
    api.get(f"{proxy}/notes?page=2&pageSize=100", complete_qs=True, json=page([resource("note", 2)]))
    api.get(f"{proxy}/klasses", json=page([]))
    api.get(f"{proxy}/audit-logs", json=page([]))
    config = {"organization": "acme", "api_key": "k", "base_url": "https://proxy.example.com/kustomer"}
    assert len(read_stream("notes", config).records) == 2


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


def test_audit_logs_page_back_with_the_before_cursor_inside_each_window(api):
    first = page([resource("audit_log", 2, createdAt="2026-11-01T00:00:00.000Z")], "/v1/audit-logs?count=1000&before=2")
    api.get(f"{API}/audit-logs", [{"json": first}, {"json": page([resource("audit_log", 1, createdAt="2026-10-31T00:00:00.000Z")])}])
    # One window (they are a day long); a time, not a date: just after midnight today's date is past the sync's end.
    recent = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    output = read_stream("audit_logs", {**CONFIG, "start_date": recent})
    assert [m.record.data["id"] for m in output.records] == [f"{2:024x}", f"{1:024x}"]
    sent = [r for r in calls(api) if r.path == "/v1/audit-logs"]
    assert sent[0].qs["count"] == ["1000"] and "filter[start]" in sent[0].qs and "filter[end]" in sent[0].qs
    assert sent[1].qs["before"] == ["2"] and sent[1].qs["filter[start]"] == sent[0].qs["filter[start]"]


def test_audit_logs_are_read_in_one_day_windows_each_a_checkpoint(api):
    """Newest first, a window of the audit log is a checkpoint only once read whole: windows are a day long, and
    each window read emits a state."""
    api.get(f"{API}/audit-logs", json=page([]))
    start = (datetime.now(timezone.utc) - timedelta(days=3, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # at any hour
    output = read_stream("audit_logs", {**CONFIG, "start_date": start})
    sent = [parse_qs(urlsplit(r.url).query) for r in calls(api) if r.path == "/v1/audit-logs"]
    starts = sorted(datetime.fromisoformat(q["filter[start]"][0].replace("Z", "+00:00")) for q in sent)
    assert len(starts) == 4 and all(later - earlier == timedelta(days=1) for earlier, later in zip(starts, starts[1:]))
    # Windows run in parallel and the state is their low-water mark, so which windows' ends the states show depends
    # on the order they finish in: each is the start, a window's last millisecond or the sync's end, never behind.
    states = [datetime.fromisoformat(m.state.stream.stream_state.createdAt.replace("Z", "+00:00")) for m in output.state_messages]
    assert len(states) >= 4 and states == sorted(states), states
    ends = {starts[0]} | {s + timedelta(days=1, milliseconds=-1) for s in starts[:-1]} | {states[-1]}
    assert set(states) <= ends and states[-1] > starts[-1], states


def test_satisfaction_responses_list_the_conversations_by_page_number(api):
    """Their first sync reads the conversations' list as every list is read: by page number, checkpointed by it."""
    api.get(f"{API}/conversations", json=page([]))
    read_stream("satisfaction_responses")
    [first] = [r for r in calls(api) if r.path == "/v1/conversations"]
    assert first.qs == {"page": ["1"], "pagesize": ["100"]}
