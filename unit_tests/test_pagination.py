"""Pagination: largest page size, relative `links.next` followed on the API host only, stop on null or empty."""

import pytest

from unit_tests.conftest import API, page, read_stream, resource


@pytest.mark.parametrize("stream, size", [("customers", 100), ("conversations", 100), ("users", 500), ("teams", 500)])
def test_first_request_asks_for_the_largest_page(api, stream, size):
    api.get(f"{API}/{stream}", json=page([]))
    read_stream(stream)
    assert api.request_history[0].qs == {"pagesize": [str(size)]}


def test_follows_relative_next_links_until_null(api):
    api.get(f"{API}/tags?pageSize=100", complete_qs=True, json=page([resource("tag", 1)], "/v1/tags?page=2&pageSize=100"))
    api.get(f"{API}/tags?page=2&pageSize=100", complete_qs=True, json=page([resource("tag", 2)], "/v1/tags?page=3&pageSize=100"))
    api.get(f"{API}/tags?page=3&pageSize=100", complete_qs=True, json=page([resource("tag", 3)], None))
    output = read_stream("tags")
    assert [m.record.data["id"] for m in output.records] == [f"{n:024x}" for n in (1, 2, 3)]
    assert api.call_count == 3


def test_stops_on_an_empty_page_that_still_links_onwards(api):
    api.get(f"{API}/brands?pageSize=100", complete_qs=True, json=page([resource("brand", 1)], "/v1/brands?page=2&pageSize=100"))
    api.get(f"{API}/brands?page=2&pageSize=100", complete_qs=True, json=page([], "/v1/brands?page=3&pageSize=100"))
    output = read_stream("brands")
    assert len(output.records) == 1 and api.call_count == 2


def test_next_links_keep_a_base_url_path_prefix(api):
    proxy = "https://proxy.example.com/kustomer/v1"
    api.get(f"{proxy}/notes?pageSize=100", complete_qs=True, json=page([resource("note", 1)], "/v1/notes?page=2&pageSize=100"))
    api.get(f"{proxy}/notes?page=2&pageSize=100", complete_qs=True, json=page([resource("note", 2)]))
    config = {"organization": "acme", "api_key": "k", "base_url": "https://proxy.example.com/kustomer"}
    assert len(read_stream("notes", config).records) == 2


@pytest.mark.parametrize(
    "next_link", ["https://evil.example.com/v1/shortcuts?page=2", "//evil.example.com/v1/shortcuts?page=2", "/v1/../../x"]
)
def test_refuses_a_next_link_to_another_host(api, next_link):
    api.get(f"{API}/shortcuts", json=page([resource("shortcut", 1)], next_link))
    evil = api.get("https://evil.example.com/v1/shortcuts", json=page([]))
    output = read_stream("shortcuts")
    assert not evil.called and api.call_count == 1
    assert any("another host" in e.trace.error.message for e in output.errors)


def test_an_absolute_next_link_on_the_api_host_is_followed(api):
    api.get(f"{API}/tags?pageSize=100", complete_qs=True, json=page([resource("tag", 1)], f"{API}/tags?page=2&pageSize=100"))
    api.get(f"{API}/tags?page=2&pageSize=100", complete_qs=True, json=page([resource("tag", 2)]))
    assert len(read_stream("tags").records) == 2
