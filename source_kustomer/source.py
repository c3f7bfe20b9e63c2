"""Hands `manifest.yaml`, with the stream schemas from `schemas/*.json`, to the CDK's declarative runtime."""

from __future__ import annotations

import copy
import json
import logging
from datetime import datetime, timezone
from importlib import resources
from typing import Any, List, Mapping, Optional
from urllib.parse import urlsplit

import isodate
import requests
import yaml
from airbyte_cdk.models import AirbyteConnectionStatus, AirbyteStateMessage, ConfiguredAirbyteCatalog, Status, SyncMode
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.sources.declarative.models.declarative_component_schema import (
    HttpResponseFilter as HttpResponseFilterModel,
)
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets

from source_kustomer.components import KustomerHeaders, OrgBudget, current_token, kustomer_timestamp


def load_manifest() -> dict[str, Any]:
    """The manifest with `schemas:` filled from the JSON files, so streams can `$ref: "#/schemas/<name>"`."""
    package = resources.files("source_kustomer")
    manifest = yaml.load(package.joinpath("manifest.yaml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = package.joinpath("schemas")
    manifest["schemas"] = {
        entry.name[: -len(".json")]: json.loads(entry.read_text())
        for entry in schemas.iterdir()
        if entry.name.endswith(".json")
    }
    return manifest


class SourceKustomer(ConcurrentDeclarativeSource):
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> None:
        super().__init__(catalog=catalog, config=config, state=state, source_config=load_manifest())
        self._begin_search_at_start_date()
        self._write_in_cursor_end()
        self._list_full_refresh_without_cursor(catalog)
        # The CDK caches the pages of parent streams and schema loaders, and a retry would be answered from that cache:
        # a cut-off or HTML page with status 200, once cached, fails every retry. Every request goes to Kustomer.
        self._constructor._disable_cache = True
        if self._config.get("api_url"):
            # Every requester's session calls this budget before each request, retries and redirects included.
            percent = self._config.get("max_api_usage_percent") or 50
            self._constructor._api_budget = OrgBudget(self._config["api_url"], percent)

    def _write_in_cursor_end(self) -> None:
        """Every cursor ends at `cursor_end`, fixed for the sync. As a template it is rendered again for every record
        (about a sixth of a full sync's CPU); the literal it renders to is not, as the CDK skips Jinja for it."""
        end = (self._config or {}).get("cursor_end")

        def write_in(node: Any) -> None:
            children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
            for key, value in children:
                if key == "end_datetime" and value == "{{ config['cursor_end'] }}":
                    node[key] = end
                else:
                    write_in(value)

        if end:
            write_in(self._source_config)

    def _list_full_refresh_without_cursor(self, catalog: Optional[ConfiguredAirbyteCatalog]) -> None:
        """A full-refresh stream whose cursor only filters what a list returned is read as that list, without the
        cursor: it parses every record's timestamp for a state that full refresh never uses (about a third of a
        sync's CPU). Kept: cursors that shape the requests (audit logs' windows) or have a `start_date` to apply."""
        full_refresh = {s.stream.name for s in (catalog.streams if catalog else []) if s.sync_mode == SyncMode.full_refresh}
        streams = self._source_config["streams"]
        for index, stream in enumerate(streams):
            listed = stream.get("full_refresh_stream", stream)
            cursor = listed.get("incremental_sync") or {}
            shapes_requests = "start_time_option" in cursor or "end_time_option" in cursor
            applies_start_date = "start_datetime" in str(cursor.get("start_datetime")) and self._config.get("start_datetime")
            if stream["name"] in full_refresh and not shapes_requests and not applies_start_date:
                listed = copy.deepcopy(listed)  # its parts are shared with other streams by $ref
                listed.pop("incremental_sync", None)
                streams[index] = listed

    def _begin_search_at_start_date(self) -> None:
        """With no state and a `start_date` inside search's window, begin with search at `start_date` instead of
        listing every record: the same records, far fewer requests."""
        start = (self._config or {}).get("start_datetime")
        for stream in self.resolved_manifest["streams"]:
            if stream.get("type") != "StateDelegatingStream" or not start:
                continue
            horizon = datetime.now(timezone.utc) - isodate.parse_duration(stream["api_retention_period"])
            if start >= kustomer_timestamp(horizon) and not self._connector_state_manager.get_stream_state(stream["name"], None):
                self._connector_state_manager.update_state_for_stream(stream["name"], None, {"updatedAt": start})

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """GET /v1/auth/tokens/current answers for any valid key, whatever its roles; failures say what to fix."""
        api_url = self._config["api_url"]
        host = urlsplit(api_url).netloc
        try:
            response = current_token(self._config)
        except requests.exceptions.ConnectionError:
            return _failed(
                f"Could not connect to {host}. Check `organization` (an org that does not exist has no API host) "
                "and, if set, `base_url`; a firewall or proxy may also block the connection."
            )
        except requests.exceptions.RequestException as error:
            return _failed(f"The request to {host} failed ({type(error).__name__}); check `base_url` and try again.")
        status = response.status_code
        if status == 200:
            try:
                response.json()["data"]
            except (ValueError, KeyError, TypeError):
                return _failed(f"{host} answered, but not like the Kustomer API: check `base_url`.")
            unreadable = self._unreadable_streams(KustomerHeaders(self._config, {}).get_auth_header())
            if {s["name"] for s in self.resolved_manifest["streams"]} <= unreadable.keys():
                return _failed(f"The API key works but may read none of the streams; grant it read roles: {'; '.join(unreadable.values())}.")
            if unreadable:
                message = f"Connected. The API key may not read, so a sync skips: {'; '.join(unreadable.values())}."
                logger.warning(message)
                return AirbyteConnectionStatus(status=Status.SUCCEEDED, message=message)
            return AirbyteConnectionStatus(status=Status.SUCCEEDED)
        if status == 401:  # the same words as a sync would use, from the manifest's error handler
            bad_key = self.resolved_manifest["definitions"]["error_handler"]["bad_key"]
            return _failed(self._constructor.create_component(HttpResponseFilterModel, bad_key, self._config).matches(response).error_message)
        if status == 404:
            return _failed(f"No Kustomer API at {host} (HTTP 404). Check `organization` and, if set, `base_url`.")
        if 300 <= status < 400:
            return _failed(f"{host} redirects elsewhere (HTTP {status}); set `base_url` to the API host itself.")
        if status == 403:
            return _failed(
                "Kustomer refused the key (HTTP 403). If the key has an IP restriction, allow this machine's address."
            )
        return _failed(f"Kustomer answered HTTP {status} at {host}; it may be busy or down, try again later.")

    def _unreadable_streams(self, headers: Mapping[str, str]) -> dict[str, str]:
        """One small request per stream (and one search): what the key's roles do not cover, with the role."""
        api_url, blocked, klasses = self._config["api_url"], {}, []

        def answer(method: str, path: str, **kwargs: Any) -> requests.Response:
            url = f"{api_url}/v1/{path}"
            return requests.request(method, url, headers=headers, timeout=(10, 60), allow_redirects=False, **kwargs)

        statuses: dict[str, int] = {}  # resource -> HTTP status: streams sharing a list probe it once
        for stream in self.resolved_manifest["streams"]:
            parameters = stream.get("full_refresh_stream", stream)["$parameters"]
            if "resource" in parameters and parameters["resource"] not in statuses:
                response = answer("GET", parameters["resource"], params={"pageSize": 1})
                statuses[parameters["resource"]] = response.status_code
                if parameters["resource"] == "klasses" and response.status_code == 200:
                    klasses = [k.get("attributes", {}).get("name") for k in response.json().get("data") or []]
            if statuses.get(parameters.get("resource")) in (401, 403):
                blocked[stream["name"]] = f"{stream['name']} (role {parameters['role']})"
        if "klasses" in blocked or (klasses and answer("GET", f"klasses/{klasses[0]}").status_code in (401, 403)):
            blocked["kobjects"] = "kobjects (roles org.permission.klass.read and org.permission.kobject.read)"
        if answer("POST", "customers/search", params={"pageSize": 1}, json={"queryContext": "customer"}).status_code in (401, 403):
            blocked["search"] = "incremental syncs after the first, which search (role org.permission.search.create)"
        if answer("GET", "metadata/customer").status_code in (401, 403):
            blocked["metadata"] = "typed custom-attribute columns, which stay in `custom` (role org.permission.metadata.read)"
        return blocked


def _failed(message: str) -> AirbyteConnectionStatus:
    return AirbyteConnectionStatus(status=Status.FAILED, message=filter_secrets(message))
