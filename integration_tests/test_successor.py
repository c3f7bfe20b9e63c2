"""A drop-in successor to Airbyte's archived Kustomer source (source-kustomer-singer): its config and its state work as
they are, and a state this connector cannot use fails only its stream, with what to do. Through the real command."""

from datetime import datetime, timedelta, timezone

import pytest

from integration_tests import cli
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer
from source_kustomer.components.timestamps import kustomer_timestamp

SMALL = {"customers": 150, "conversations": 100, "messages": 150, "notes": 40, "users": 20, "tags": 30, "teams": 10,
         "shortcuts": 10}
SINGER_STREAMS = ["conversations", "customers", "kobjects", "messages", "notes", "shortcuts", "tags", "teams", "users"]


def archived_config(server) -> dict:
    """source-kustomer-singer's config (spec: api_token, start_date), plus only what points it at the fake."""
    return {"api_token": API_KEY, "start_date": "2019-01-01T00:00:00Z", "base_url": server.url}


def catalog_of(config, streams) -> dict:
    discovered = cli.run("discover", config).of_type("CATALOG")[0]
    return cli.configured_catalog(discovered, streams, incremental=True)


def since(server, stream: str, bookmark: str) -> set[str]:
    bound = kustomer_timestamp(datetime.fromisoformat(bookmark.replace("Z", "+00:00")))
    return {r["id"] for r in server.dataset.all(stream) if r["attributes"]["updatedAt"] >= bound}


def test_the_archived_config_is_migrated_without_what_is_derived_at_run_time():
    with FakeKustomer(Dataset(SMALL)) as server:
        run = cli.run("check", archived_config(server))
        [status] = run.of_type("CONNECTION_STATUS")
        assert status["status"] == "SUCCEEDED", status
        [control] = [m["control"] for m in run.messages if m["type"] == "CONTROL"]
        saved = control["connectorConfig"]["config"]
        assert saved == {"api_key": API_KEY, "start_date": "2019-01-01T00:00:00Z", "base_url": server.url}


def test_the_archived_sample_state_resumes_each_stream_from_its_bookmark():
    with FakeKustomer(Dataset(SMALL)) as server:
        config = archived_config(server)
        catalog = catalog_of(config, SINGER_STREAMS)
        recent = kustomer_timestamp(datetime.now(timezone.utc) - timedelta(days=200)).replace(".000Z", "Z")[:19] + "Z"
        bookmarks = {name: "2021-12-25T18:00:00Z" for name in SINGER_STREAMS}
        bookmarks["customers"] = recent  # inside search's two years: searched from there
        run = cli.run("read", config, catalog, state={"bookmarks": bookmarks})
        assert run.returncode == 0 and not run.errors(), run.errors()
        for stream in ("customers", "conversations", "messages", "notes", "tags", "users"):
            assert {r["id"] for r in run.records(stream)} == since(server, stream, bookmarks[stream]), stream
        bound = kustomer_timestamp(datetime.fromisoformat(bookmarks["kobjects"].replace("Z", "+00:00")))
        kobjects = {r["id"] for records in server.dataset.kobjects.values() for r in records if r["attributes"]["updatedAt"] >= bound}
        assert {r["id"] for r in run.records("kobjects")} == kobjects and kobjects
        searched = [e for e in server.requests_log if e["path"] == "/v1/customers/search"]
        assert searched and not [e for e in server.requests_log if e["path"] == "/v1/customers"]


@pytest.mark.parametrize("bad", ["not-a-date", 12345, None])
def test_a_state_it_cannot_use_fails_only_its_stream_and_says_what_to_do(bad):
    with FakeKustomer(Dataset(SMALL)) as server:
        config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url}
        catalog = catalog_of(config, ["customers", "tags"])
        first = cli.run("read", config, catalog)
        states = [s for s in first.final_states() if s["stream"]["stream_descriptor"]["name"] == "tags"]
        states.append({"type": "STREAM", "stream": {"stream_descriptor": {"name": "customers"}, "stream_state": {"updatedAt": bad}}})
        run = cli.run("read", config, catalog, state=states)
        assert run.returncode == 1
        error = next(e for e in run.errors() if "customers" in e)
        assert repr(bad) in error or str(bad) in error
        assert "reset" in error.lower()
        assert not run.records("customers")
        kept = {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"] for s in run.final_states()}
        assert kept["customers"] == {"updatedAt": bad}  # given back as it was: the next sync fails the same way
        tags = [t for t in run.of_type("TRACE") if t["type"] == "STREAM_STATUS" and t["stream_status"]["stream_descriptor"]["name"] == "tags"]
        assert tags[-1]["stream_status"]["status"] == "COMPLETE"
