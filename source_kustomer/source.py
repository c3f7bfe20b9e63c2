"""The manifest, handed to the CDK's declarative runtime as it is, with two things a manifest cannot say: which streams
the catalog reads in full refresh, and a `check` that tells a rejected key from a missing role."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any, List, Mapping, Optional
from urllib.parse import urlsplit

import requests
import yaml
from airbyte_cdk.models import AirbyteConnectionStatus, AirbyteStateMessage, ConfiguredAirbyteCatalog, Status, SyncMode
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.sources.declarative.models.declarative_component_schema import (
    HttpResponseFilter as HttpResponseFilterModel,
)
from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import ModelToComponentFactory
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets

from source_kustomer.components import KustomerHeaders, current_token


def load_manifest() -> dict[str, Any]:
    text = resources.files("source_kustomer").joinpath("manifest.yaml").read_text()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class SourceKustomer(ConcurrentDeclarativeSource):
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> None:
        super().__init__(catalog=catalog, config=config, state=state, source_config=load_manifest())
        config = self.configure(config or {}, "")  # the config the streams are built with, migrated and normalized
        if isinstance(config, dict):  # lists read in full refresh keep what changed during the sync (WithinCursorBounds)
            config["full_refresh_streams"] = [s.stream.name for s in (catalog.streams if catalog else []) if s.sync_mode == SyncMode.full_refresh]

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """GET /v1/auth/tokens/current answers for any valid key, whatever its roles; failures say what to fix."""
        config = self.configure(config, "")  # normalized, as the streams see it
        api_url = config["api_url"]
        host = urlsplit(api_url).netloc
        try:
            response = current_token(config)
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
            unreadable = self._unreadable_streams(config)
            if {s["name"] for s in self.resolved_manifest["streams"]} <= unreadable.keys():
                return _failed(f"The API key works but may read none of the streams; grant it read roles: {'; '.join(unreadable.values())}.")
            if unreadable:
                message = f"Connected. The API key may not read, so a sync skips: {'; '.join(unreadable.values())}."
                logger.warning(message)
                return AirbyteConnectionStatus(status=Status.SUCCEEDED, message=message)
            return AirbyteConnectionStatus(status=Status.SUCCEEDED)
        if status == 401:  # the same words as a sync would use, from the manifest's error handler
            bad_key = self.resolved_manifest["definitions"]["error_handler"]["bad_key"]
            bad_key = ModelToComponentFactory().create_component(HttpResponseFilterModel, bad_key, config)
            return _failed(bad_key.matches(response).error_message)
        if status == 404:
            return _failed(f"No Kustomer API at {host} (HTTP 404). Check `organization` and, if set, `base_url`.")
        if 300 <= status < 400:
            return _failed(f"{host} redirects elsewhere (HTTP {status}); set `base_url` to the API host itself.")
        if status == 403:
            return _failed(
                "Kustomer refused the key (HTTP 403). If the key has an IP restriction, allow this machine's address."
            )
        return _failed(f"Kustomer answered HTTP {status} at {host}; it may be busy or down, try again later.")

    def _unreadable_streams(self, config: Mapping[str, Any]) -> dict[str, str]:
        """One small request per stream (and one search): what the key's roles do not cover, with the role."""
        api_url, headers, blocked, klasses = config["api_url"], KustomerHeaders(config, {}).get_auth_header(), {}, []

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
