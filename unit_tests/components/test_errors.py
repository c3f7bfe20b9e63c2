"""Faults and errors while reading: retried with backoff, skipped, or failed with a message that says why."""

import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read
from airbyte_cdk.test.state_builder import StateBuilder

from source_kustomer import SourceKustomer
from unit_tests.conftest import API, CONFIG, TOKEN, UNAUTHORIZED, calls, page, read_stream, resource, warnings_of


pytestmark = pytest.mark.usefixtures("no_waiting")  # unit_tests/conftest.py


@pytest.mark.parametrize(
    "fault",
    [
        {"status_code": 503, "json": {"errors": [{"status": 503, "title": "Service Unavailable"}]}},
        {"status_code": 502, "text": "<html>Bad Gateway</html>"},
        {"status_code": 200, "text": '{"data": [{"type": "tag", "id": "1", "attr'},  # cut off mid-body
        {"status_code": 200, "text": "<html>maintenance</html>", "headers": {"Content-Type": "text/html"}},
        {"exc": requests.exceptions.ConnectionError("Connection reset by peer")},
        {"exc": requests.exceptions.ReadTimeout("Read timed out")},
    ],
)
def test_a_fault_is_retried_and_nothing_is_lost_or_doubled(api, fault, no_waiting):
    api.get(f"{API}/tags", [fault, fault, {"json": page([resource("tag", 1), resource("tag", 2)])}])
    output = read_stream("tags")
    assert [m.record.data["id"] for m in output.records] == [f"{1:024x}", f"{2:024x}"]
    assert len(calls(api)) == 3 and not output.errors
    assert len([w for w in no_waiting if w]) == 2 and no_waiting[0] <= 2  # exponential backoff, short at first


def test_a_page_is_not_parsed_again_by_the_error_filters(api, monkeypatch):
    """A 2xx JSON object matches no filter; the filters would each parse it again with json (slower than orjson)."""
    parsed = []
    monkeypatch.setattr(requests.Response, "json", lambda self, **kw: parsed.append(self.url) or {})
    api.get(f"{API}/tags", json=page([resource("tag", n) for n in range(1, 51)]))
    output = read_stream("tags")
    assert len(output.records) == 50 and not output.errors
    assert not [url for url in parsed if "/tags" in url], parsed


def test_kustomer_s_wrong_region_error_fails_the_sync_even_in_a_200(api):
    """Its HTTP status is not recorded: the filters still see a 200 whose body is an error."""
    wrong = {"errors": [{"status": 401, "title": "Unauthorized",
                         "detail": "Auth token associated with pod prod2 but request is being handled by prod1"}]}
    api.get(f"{API}/tags", status_code=200, json=wrong)
    output = read_stream("tags")
    assert not output.records
    assert any("another region" in e.trace.error.message for e in output.errors), output.errors


def test_a_fault_that_persists_fails_the_stream_with_what_happened_after_bounded_retries(api, no_waiting):
    api.get(f"{API}/tags", status_code=503, json={"errors": [{"status": 503, "title": "Service Unavailable"}]})
    api.get(f"{API}/brands", json=page([resource("brand", 1)]))
    output = read_stream("tags")
    assert len(calls(api)) == 9  # the first try and 8 retries
    assert any("503" in e.trace.error.message for e in output.errors)
    assert sum(no_waiting) < 300


def test_a_403_skips_the_stream_and_names_the_role_to_grant(api, caplog):
    api.get(f"{API}/notes", status_code=403, json={"errors": [{"status": 403, "title": "Forbidden"}]})
    output = read_stream("notes")
    assert not output.errors and not output.records
    logs = " ".join(m.log.message for m in output.logs)
    assert "Skipped stream notes" in logs and "org.permission.note.read" in logs


def test_a_429_waits_for_the_refill_then_goes_on(api, no_waiting):
    reset = {"x-ratelimit-limit": "300", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "20"}
    api.get(f"{API}/tags", [
        {"status_code": 429, "headers": reset, "json": {"errors": [{"status": 429, "title": "Too Many Requests"}]}},
        {"json": page([resource("tag", 1)]), "headers": {"x-ratelimit-limit": "300", "x-ratelimit-remaining": "299"}},
    ])
    output = read_stream("tags")
    assert len(output.records) == 1 and not output.errors
    assert 19 <= sum(no_waiting) <= 21  # the budget sleeps a second at a time, looking for the refill between
    assert any(re.search(r"pausing requests for (19|20) s", m.log.message) for m in output.logs)


def test_a_kobject_klass_deleted_after_the_klass_list_is_skipped(api):
    api.get(f"{API}/klasses", json=page([resource("klass", 1, name="gone"), resource("klass", 2, name="order")]))
    api.get(f"{API}/klasses/gone", status_code=404, json={"errors": [{"status": 404, "title": "Not Found"}]})
    api.get(f"{API}/klasses/order", json=page([resource("kobject.order", 5)]))
    output = read_stream("kobjects")
    assert [m.record.data["id"] for m in output.records] == [f"{5:024x}"] and not output.errors


def test_a_redirect_to_another_host_is_refused_without_sending_the_key(api):
    api.get(f"{API}/tags", status_code=302, headers={"Location": "https://evil.example.com/v1/tags"})
    evil = api.get("https://evil.example.com/v1/tags", json=page([resource("tag", 1)]))
    output = read_stream("tags")
    assert not evil.called and not output.records
    assert any("another host" in e.trace.error.message for e in output.errors)


def test_the_key_never_appears_in_any_message_even_when_kustomer_echoes_it(api, tmp_path, capsys):
    import json

    from source_kustomer.run import run

    api.get(f"{API}/tags", status_code=401, json={"errors": [{"title": f"bad token {CONFIG['api_key']}"}]})
    api.get(f"{API}/auth/tokens/current", status_code=401, json={"errors": [{"title": "Unauthorized"}]})
    catalog = {"streams": [{"stream": {"name": "tags", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                            "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]}
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    with pytest.raises(SystemExit):
        run(["read", "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")])
    printed = capsys.readouterr()
    assert "rejected the API key" in printed.out and "bad token ****" in printed.out
    assert CONFIG["api_key"] not in printed.out + printed.err


def test_a_401_for_a_key_that_works_is_a_missing_role_the_stream_is_skipped(api):
    api.get(f"{API}/notes", status_code=401, json=UNAUTHORIZED)
    token = api.get(TOKEN, json={"data": {"type": "auth_token", "id": "t1"}})
    output = read_stream("notes")
    assert not output.errors and not output.records and token.call_count == 1
    [warning] = [w for w in warnings_of(output) if "Skipped stream notes" in w]
    assert "HTTP 401" in warning and "org.permission.note.read" in warning


def test_a_401_for_a_key_kustomer_refuses_fails_with_what_to_do(api):
    api.get(f"{API}/notes", status_code=401, json=UNAUTHORIZED)
    api.get(TOKEN, status_code=401, json=UNAUTHORIZED)
    output = read_stream("notes")
    assert any("Kustomer rejected the API key" in e.trace.error.message and e.trace.error.failure_type.value == "config_error"
               for e in output.errors)


def test_a_401_when_kustomer_cannot_say_whose_it_is_fails_the_stream_to_be_retried(api, no_waiting):
    api.get(f"{API}/notes", status_code=401, json=UNAUTHORIZED)
    api.get(TOKEN, status_code=503, json={"errors": [{"status": 503, "title": "Service Unavailable"}]})
    output = read_stream("notes")
    assert any("tell a rejected key from a missing role" in e.trace.error.message
               and e.trace.error.failure_type.value == "transient_error" for e in output.errors)


def test_an_audit_log_that_keeps_failing_only_turns_deletion_markers_off(api, no_waiting):
    """customers continuing from a state searches, then asks the audit log for deletions in each window; the audit log
    answering 503 every time leaves the stream complete, with its records and its state."""
    api.post(f"{API}/customers/search", json=page([resource("customer", 1, updatedAt="2099-01-01T00:00:00.000Z")]))
    audit = api.get(f"{API}/audit-logs", status_code=503, json={"errors": [{"status": 503, "title": "Service Unavailable"}]})
    catalog = CatalogBuilder().with_stream("customers", SyncMode.incremental).build()
    since = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    state = StateBuilder().with_stream_state("customers", {"updatedAt": since}).build()
    output = read(SourceKustomer(catalog, dict(CONFIG), state), dict(CONFIG), catalog, state)
    assert not output.errors and audit.call_count == 4  # one window: the first try and 3 retries, then no more
    assert output.get_stream_statuses("customers")[-1].name == "COMPLETE"
    assert output.most_recent_state.stream_state.updatedAt > since
    [warning] = [w for w in warnings_of(output) if w.startswith("Deletion markers of customers")]
    assert "503" in warning and "`deletions` stream" in warning
