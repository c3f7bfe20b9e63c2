"""Helpers to run the manifest in-process against requests-mock."""

import re

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.utils.airbyte_secrets_utils import update_secrets

from source_kustomer import SourceKustomer
from source_kustomer.components import KeyCheck, OrgBudget

API = "https://acme.api.kustomerapp.com/v1"
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
    KeyCheck.forget()  # whether Kustomer refuses a key is asked once per process: once per test here
    OrgBudget.forget()  # and the org's budget is one per process: one per test here


@pytest.fixture
def api(requests_mock):
    # Every read lists the klasses first, for the kobjects_<klass> streams; tests that need klasses mock their own.
    requests_mock.get(f"{API}/klasses", json=page([]))
    # Typed streams read their custom-attribute metadata with their schema.
    requests_mock.get(re.compile(re.escape(API) + "/metadata/"), json={"data": {"attributes": {"properties": {}}}})
    return requests_mock
