"""Helpers to run the manifest in-process against requests-mock."""

import re
import time
from datetime import timedelta

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.utils.airbyte_secrets_utils import update_secrets

import yaml

import source_kustomer.source
from source_kustomer import SourceKustomer

API = "https://acme.api.kustomerapp.com/v1"
TOKEN = f"{API}/auth/tokens/current"  # answers for any valid key, whatever its roles
UNAUTHORIZED = {"errors": [{"status": 401, "code": "unauthorized", "title": "Unauthorized"}]}


def warnings_of(output) -> list:
    return [m.log.message for m in output.logs if m.log.level.value == "WARN"]


# Each incremental search starts this long before its state (the spec's `lookback_window_minutes` default).
LOOKBACK = timedelta(minutes=source_kustomer.source.load_manifest()["definitions"]["tuning"]["lookback_minutes_default"])
CONFIG = {"organization": "acme", "api_key": "unit-test-secret-key"}


def resource(kind: str, number: int, **attributes) -> dict:
    """A JSON:API resource like Kustomer's, with an org relationship and a links-only one."""
    return {
        "type": kind,
        "id": f"{number:024x}",
        "attributes": {"updatedAt": "2024-05-01T10:00:00.000Z", **attributes},
        "relationships": {
            "org": {"links": {"self": "/v1/orgs/1"}, "data": {"type": "org", "id": "org1"}},
            "messages": {"links": {"self": f"/v1/{kind}s/{number}/messages"}},
        },
        "links": {"self": f"/v1/{kind}s/{number:024x}"},
    }


def page(data: list, next_link: str | None = None) -> dict:
    return {"meta": {"page": 1}, "links": {"self": "/v1/x", "next": next_link}, "data": data}


def read_stream(stream: str, config: dict | None = None) -> EntrypointOutput:
    config = dict(config or CONFIG)
    catalog = CatalogBuilder().with_stream(stream, SyncMode.full_refresh).build()
    return read(SourceKustomer(catalog, config, None), config, catalog, expecting_exception=True)


def calls(api) -> list:
    """The requests a test's stream made: without the klasses list and the metadata every read also asks for."""
    return [r for r in api.request_history if r.path != "/v1/klasses" and not r.path.startswith("/v1/metadata/")]


@pytest.fixture(autouse=True)
def no_secrets_left_behind():
    """A read registers its config's secrets in the CDK's process-wide filter; a short test key such as "k" would
    then be masked in every later test's messages."""
    yield
    update_secrets([])


def tune(monkeypatch, **values) -> None:
    """Runs the connector with other values of the manifest's `tuning` (checkpoint_seconds=0, ...): each is a YAML
    anchor there, which every use of it follows."""
    text = source_kustomer.source.resources.files("source_kustomer").joinpath("manifest.yaml").read_text()
    for name, value in values.items():
        text, found = re.subn(rf"(&{name}) \S+", rf"\1 {value}", text)
        assert found == 1, name
    manifest = yaml.safe_load(text)
    monkeypatch.setattr(source_kustomer.source, "load_manifest", lambda: manifest)


@pytest.fixture
def no_waiting(monkeypatch):
    """Backoff and rate-limit waits are real seconds; here they take none, are recorded, and move the clock on."""
    waits, real_time = [], time.time
    monkeypatch.setattr(time, "sleep", waits.append)
    monkeypatch.setattr(time, "time", lambda: real_time() + sum(waits))
    return waits


@pytest.fixture
def api(requests_mock):
    # Every read lists the klasses first, for the kobjects_<klass> streams; tests that need klasses mock their own.
    requests_mock.get(f"{API}/klasses", json=page([]))
    # Typed streams read their custom-attribute metadata with their schema.
    requests_mock.get(re.compile(re.escape(API) + "/metadata/"), json={"data": {"attributes": {"properties": {}}}})
    return requests_mock
