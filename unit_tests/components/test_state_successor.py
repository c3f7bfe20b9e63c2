"""The archived source-kustomer-singer's config and state, and states that cannot be used (source.py, the manifest's
config migration)."""

import json
import logging

import pytest
from airbyte_cdk.models import AirbyteStateMessageSerializer, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder

from source_kustomer import SourceKustomer
from source_kustomer.components.config import SHARED_HOST
from source_kustomer.components.state import SyncPlan

ARCHIVED = {"api_token": "singer-token", "start_date": "2019-01-01T00:00:00Z"}
BOOKMARKS = {"bookmarks": {"customers": "2021-12-25T18:00:00Z", "kobjects": "2021-12-25T18:00:00Z",
                           "tags": "2024-02-01T00:00:00Z", "no_such_stream": "2021-12-25T18:00:00Z"}}


def stream_state(name: str, state: dict):
    return AirbyteStateMessageSerializer.load({"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": state}})


def test_the_archived_config_becomes_ours_and_only_what_it_gave_is_saved(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(ARCHIVED))
    source = SourceKustomer(None, json.loads(path.read_text()), None, str(path))
    saved = json.loads(path.read_text())
    assert saved == {"api_key": "singer-token", "start_date": "2019-01-01T00:00:00Z"}  # nothing derived at run time
    [control] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"CONTROL"' in line]
    assert control["control"]["connectorConfig"]["config"] == saved
    config = source.built_config()
    assert config["api_url"] == SHARED_HOST and config["start_datetime"] == "2019-01-01T00:00:00.000Z"


def test_nothing_is_written_where_the_connector_runs(tmp_path, monkeypatch, requests_mock):
    monkeypatch.chdir(tmp_path)
    requests_mock.get(f"{SHARED_HOST}/v1/auth/tokens/current", status_code=401, json={"errors": [{"title": "Unauthorized"}]})
    source = SourceKustomer(None, dict(ARCHIVED), None)
    assert "rejected the API key" in source.check(logging.getLogger("test"), dict(ARCHIVED)).message
    assert source.built_config()["api_url"] == SHARED_HOST
    assert list(tmp_path.iterdir()) == []  # no config file, with its key, left behind


def test_our_own_config_is_not_migrated(capsys):
    config = SourceKustomer(None, {"organization": "acme", "api_key": "k"}, None).built_config()
    assert config["api_url"] == "https://acme.api.kustomerapp.com"
    assert '"CONTROL"' not in capsys.readouterr().out


@pytest.mark.parametrize("form", ["blob", "legacy message"])
def test_the_singer_state_becomes_a_state_per_stream(tmp_path, form):
    given = BOOKMARKS if form == "blob" else [{"type": "LEGACY", "data": BOOKMARKS}]
    (tmp_path / "state.json").write_text(json.dumps(given))
    states = SourceKustomer.read_state(str(tmp_path / "state.json"))
    found = {m.stream.stream_descriptor.name: m.stream.stream_state.updatedAt for m in states}
    assert found == {"customers": "2021-12-25T18:00:00Z", "kobjects": "2021-12-25T18:00:00Z", "tags": "2024-02-01T00:00:00Z"}


def test_our_own_state_file_is_read_as_before(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps([{"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "tags"}, "stream_state": {"updatedAt": "2024-02-01T00:00:00.000Z"}}}]))
    [state] = SourceKustomer.read_state(str(tmp_path / "state.json"))
    assert state.stream.stream_state.updatedAt == "2024-02-01T00:00:00.000Z"


def test_a_list_resumes_from_a_state_older_than_search_reaches():
    states = [stream_state("customers", {"updatedAt": "2021-12-25T18:00:00Z"}),
              stream_state("kobjects", {"state": {"updatedAt": "2021-12-25T18:00:00.000Z"}}),
              stream_state("notes", {"updatedAt": "2099-01-01T00:00:00.000Z"})]  # within reach: searched, not listed
    config = SourceKustomer(None, {"organization": "acme", "api_key": "k"}, states).built_config()
    plan = SyncPlan.of(config)  # what the sync's list streams start from
    assert {name: plan.stream(name).list_from for name in ("customers", "kobjects", "notes")} == {
        "customers": "2021-12-25T18:00:00.000Z", "kobjects": "2021-12-25T18:00:00.000Z", "notes": None}


@pytest.mark.parametrize("bad", ["not-a-date", 12345, None, "2024-01-01", {"at": 1}])
def test_a_state_that_cannot_be_used_fails_only_its_stream_with_what_to_do(bad, api):
    api.get("https://acme.api.kustomerapp.com/v1/tags", json={"data": [], "links": {}})
    catalog = CatalogBuilder().with_stream("customers", SyncMode.incremental).with_stream("tags", SyncMode.incremental).build()
    source = SourceKustomer(catalog, {"organization": "acme", "api_key": "k"}, [stream_state("customers", {"updatedAt": bad})])
    messages = []
    with pytest.raises(Exception) as raised:
        for message in source.read(logging.getLogger("test"), source.built_config(), catalog, None):
            messages.append(message)
    assert "stream customers cannot be used" in raised.value.message and repr(bad) in raised.value.message
    assert "Reset" in raised.value.message and raised.value.failure_type.value == "config_error"
    statuses = {(m.trace.stream_status.stream_descriptor.name, m.trace.stream_status.status.value)
                for m in messages if m.trace and m.trace.stream_status}
    assert ("tags", "COMPLETE") in statuses and ("customers", "INCOMPLETE") in statuses
    [kept] = [m.state.stream for m in messages if m.state and m.state.stream.stream_descriptor.name == "customers"]
    assert kept.stream_state.updatedAt == bad  # given back as it was
