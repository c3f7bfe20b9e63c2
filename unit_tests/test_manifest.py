"""The manifest is the connector: the CDK's own ConcurrentDeclarativeSource runs it as shipped, and what the CDK must
keep doing for it (the contract this connector builds on) fails here, loudly, if a CDK release changes it."""

import logging

from airbyte_cdk.models import SyncMode
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from source_kustomer import SourceKustomer
from source_kustomer.components.budget import OrgBudget
from source_kustomer.source import load_manifest
from unit_tests.conftest import API, CONFIG, page, resource


def bare(catalog=None, config=None) -> ConcurrentDeclarativeSource:
    """What Airbyte's manifest runner and the Connector Builder do with manifest.yaml."""
    return ConcurrentDeclarativeSource(catalog=catalog, config=config, state=None, source_config=load_manifest())


def test_the_source_runs_the_shipped_manifest_unchanged():
    ours, theirs = SourceKustomer(None, dict(CONFIG), None), bare(None, dict(CONFIG))
    assert ours.resolved_manifest == theirs.resolved_manifest
    assert "schemas" in load_manifest() and all("$ref" not in str(s) for s in load_manifest()["schemas"].values())


def test_the_bare_manifest_discovers_the_same_streams(api):
    api.get(f"{API}/klasses", json=page([resource("klass", 1, name="Orders")]))
    ours = SourceKustomer(None, dict(CONFIG), None).discover(logging.getLogger("t"), dict(CONFIG))
    theirs = bare(None, dict(CONFIG)).discover(logging.getLogger("t"), dict(CONFIG))
    assert [s.name for s in ours.streams] == [s.name for s in theirs.streams]
    assert "kobjects_orders" in [s.name for s in theirs.streams]
    assert [s.json_schema for s in ours.streams] == [s.json_schema for s in theirs.streams]


def test_every_attempt_goes_through_the_org_budget(api, monkeypatch):
    """The budget lives in the authenticator: the CDK's HTTP client signs every attempt (retries too) and shows it
    every response (`ResponseAwareAuthenticator`). If a CDK release stops either, the budget would be off: this fails."""
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    asked, told = [], []
    monkeypatch.setattr(OrgBudget, "acquire_call", lambda self, request: asked.append(request.url))
    monkeypatch.setattr(OrgBudget, "update_from_response", lambda self, request, response: told.append(response.status_code))
    api.get(f"{API}/tags", [{"status_code": 503, "json": {"errors": [{"status": 503}]}},
                            {"json": page([resource("tag", 1)], "/v1/tags?page=2")}])
    api.get(f"{API}/tags?page=2", json=page([resource("tag", 2)]))
    catalog = CatalogBuilder().with_stream("tags", SyncMode.full_refresh).build()
    output = read(bare(catalog, dict(CONFIG)), dict(CONFIG), catalog)
    assert len(output.records) == 2
    tags = [url for url in asked if "/v1/tags" in url]
    assert len(tags) == 3 and told.count(503) == 1 and told.count(200) >= 2  # the retry asked again


def test_one_budget_per_sync_whatever_the_requester(api, monkeypatch):
    """Every requester of every stream of a sync waits for the same budget (the CDK builds one authenticator per
    requester, and the org's limit is one); a new sync starts its own."""
    used = []
    monkeypatch.setattr(OrgBudget, "acquire_call", lambda self, request: used.append(id(self)))
    api.get(f"{API}/tags", json=page([resource("tag", 1)]))
    api.get(f"{API}/brands", json=page([resource("brand", 1)]))
    catalog = CatalogBuilder().with_stream("tags", SyncMode.full_refresh).with_stream("brands", SyncMode.full_refresh).build()
    read(SourceKustomer(catalog, dict(CONFIG), None), dict(CONFIG), catalog)
    first = set(used)
    used.clear()
    read(SourceKustomer(catalog, dict(CONFIG), None), dict(CONFIG), catalog)
    assert len(first) == 1 and len(set(used)) == 1 and first != set(used)
