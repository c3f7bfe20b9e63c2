"""components/auth.py: every request signed once, the key shown nowhere, a redirect to another host never followed."""

from source_kustomer.components.auth import KustomerAuthenticator
from unit_tests.conftest import API, CONFIG, calls, page, read_stream, resource


def test_the_authenticator_never_shows_the_key():
    assert CONFIG["api_key"] not in repr(KustomerAuthenticator(CONFIG, {}))


def test_every_request_carries_the_bearer_key_and_asks_for_json(api):
    api.get(f"{API}/tags", json=page([resource("tag", 1)]))
    read_stream("tags")
    assert {(r.headers["Authorization"], r.headers["Accept"]) for r in calls(api)} == {
        (f"Bearer {CONFIG['api_key']}", "application/json")}


def test_a_redirect_to_another_host_stops_the_stream_and_the_key_never_goes_there(api):
    api.get(f"{API}/tags", status_code=302, headers={"Location": "https://elsewhere.example.com/v1/tags"})
    elsewhere = api.get("https://elsewhere.example.com/v1/tags", json=page([resource("tag", 1)]))
    output = read_stream("tags")
    assert not elsewhere.called and not output.records
    assert any("redirected a request to another host (elsewhere.example.com)" in e.trace.error.message
               and e.trace.error.failure_type.value == "config_error" for e in output.errors)


def test_a_redirect_on_the_api_host_is_followed(api):
    api.get(f"{API}/tags", status_code=301, headers={"Location": f"{API}/tags/moved"})
    api.get(f"{API}/tags/moved", json=page([resource("tag", 1)]))
    assert len(read_stream("tags").records) == 1
