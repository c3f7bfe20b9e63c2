"""components/lists.py: lists read by page number with the largest page size, until a page has no next link or no
records, failing rather than looping; through a base_url prefix; CSAT's list of conversations too."""


import pytest

from unit_tests.conftest import API, calls, page, read_stream, resource


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


def test_satisfaction_responses_list_the_conversations_by_page_number(api):
    """Their first sync reads the conversations' list as every list is read: by page number, checkpointed by it."""
    api.get(f"{API}/conversations", json=page([]))
    read_stream("satisfaction_responses")
    [first] = [r for r in calls(api) if r.path == "/v1/conversations"]
    assert first.qs == {"page": ["1"], "pagesize": ["100"]}
