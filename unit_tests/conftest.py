"""Helpers to run the manifest in-process against requests-mock."""

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read

from source_kustomer import SourceKustomer

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


@pytest.fixture
def api(requests_mock):
    return requests_mock
