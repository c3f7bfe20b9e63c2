"""The manifest, handed to the CDK's declarative runtime as it is, with what a manifest cannot say: the plan a sync
makes of the state it is given (components/state.py), states that cannot be used, the archived Singer connector's
state, and a `check` that tells a rejected key from a missing role."""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, List, Mapping, Optional
from urllib.parse import urlsplit

import isodate
import requests
import yaml
from airbyte_cdk.models import (
    AirbyteConnectionStatus, AirbyteMessage, AirbyteStateMessage, AirbyteStateMessageSerializer, AirbyteStateType,
    AirbyteStreamStatus, ConfiguredAirbyteCatalog, Status, SyncMode, Type,
)
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.sources.declarative.models.declarative_component_schema import (
    HttpRequester as HttpRequesterModel,
)
from airbyte_cdk.sources.declarative.models.declarative_component_schema import (
    HttpResponseFilter as HttpResponseFilterModel,
)
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver
from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import ModelToComponentFactory
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets
from airbyte_cdk.utils.stream_status_utils import as_airbyte_message
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components.auth import RefusedRedirect
from source_kustomer.components.config import config_error
from source_kustomer.components.errors import KustomerErrorHandler
from source_kustomer.components.state import SyncPlan, singer_bookmarks


def load_manifest() -> dict[str, Any]:
    text = resources.files("source_kustomer").joinpath("manifest.yaml").read_text()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class SourceKustomer(ConcurrentDeclarativeSource):
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        config_path: Optional[str] = None,
    ) -> None:
        manifest = load_manifest()
        formats = manifest["definitions"]["client_side_cursor"]["cursor_datetime_formats"]
        full_refresh = [s.stream.name for s in (catalog.streams if catalog else []) if s.sync_mode == SyncMode.full_refresh]
        reach = isodate.parse_duration(manifest["definitions"]["tuning"]["search_reach"])
        # The one place where the given state becomes this sync's plan: the CDK's cursors get what they read, the
        # rest goes to our readers; a stream whose state cannot be used is not read and keeps it (`read`).
        plan, state, self.unusable_states = SyncPlan.from_state(state or [], full_refresh, formats, _delegated(manifest), reach)
        super().__init__(catalog=catalog, config=config, state=state, source_config=manifest, config_path=config_path)
        config = self.built_config()
        if isinstance(config, dict):  # derived for this run: never saved (a migration is saved before this)
            config[SyncPlan.KEY] = plan.to_config()

    def built_config(self) -> Mapping[str, Any]:
        """The config the streams are built with, migrated and normalized. `configure` writes it into the folder it is
        given, as the CDK's entrypoint does for every command: a folder of its own, removed at once."""
        with tempfile.TemporaryDirectory() as folder:
            return self.configure({}, folder)

    def read(self, logger: logging.Logger, config: Mapping[str, Any], catalog: ConfiguredAirbyteCatalog,
             state: Optional[List[AirbyteStateMessage]] = None) -> Iterator[AirbyteMessage]:
        """The streams whose state cannot be used are left out (the CDK would replace their state with the start),
        and fail the sync at its end with what to do; the others sync."""
        unusable = [s.stream for s in catalog.streams if s.stream.name in self.unusable_states]
        readable = ConfiguredAirbyteCatalog(streams=[s for s in catalog.streams if s.stream.name not in self.unusable_states])
        yield from super().read(logger, config, readable, state)
        for stream in unusable:
            why, given = self.unusable_states[stream.name]
            yield as_airbyte_message(stream, AirbyteStreamStatus.STARTED)
            yield AirbyteMessage(type=Type.STATE, state=AirbyteStateMessage(type=AirbyteStateType.STREAM, stream=given.stream))
            yield as_airbyte_message(stream, AirbyteStreamStatus.INCOMPLETE)
        if unusable:
            raise config_error(" ".join(self.unusable_states[s.name][0] for s in unusable))

    @classmethod
    def read_state(cls, state_path: str) -> List[AirbyteStateMessage]:
        """Also the archived source-kustomer-singer's state (state.singer_bookmarks): each stream resumes from its
        bookmark."""
        bookmarks = singer_bookmarks(json.loads(Path(state_path).read_text()) if state_path else None)
        if bookmarks is None:
            return super().read_state(state_path)
        return [AirbyteStateMessageSerializer.load({"type": "STREAM", "stream": {
            "stream_descriptor": {"name": name}, "stream_state": {"updatedAt": bookmark}}})
            for name, bookmark in bookmarks.items()]

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """GET /v1/auth/tokens/current answers for any valid key, whatever its roles; failures say what to fix."""
        config = self.built_config() or config  # normalized, as the streams see it
        host = urlsplit(config["api_url"]).netloc
        try:
            response = self._requester("key_check", config).send_request()
        except RefusedRedirect as refused:
            return _failed(f"{host} redirects elsewhere (HTTP {refused.status}); set `base_url` to the API host itself.")
        except AirbyteTracedException as error:
            return _failed(_unanswered(error, host))
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
            return _failed(KustomerErrorHandler.in_kustomer_words(bad_key.matches(response), response).error_message)
        if status == 404:
            return _failed(f"No Kustomer API at {host} (HTTP 404). Check `organization` and, if set, `base_url`.")
        if status == 403:
            return _failed(
                "Kustomer refused the key (HTTP 403). If the key has an IP restriction, allow this machine's address."
            )
        return _failed(f"Kustomer answered HTTP {status} at {host}; it may be busy or down, try again later.")

    def _requester(self, name: str, config: Mapping[str, Any]) -> Any:
        """A requester the manifest defines (key_check, probe, probe_search): through the org's budget and the
        CDK's retries, like every request of a sync."""
        definition = copy.deepcopy(self.resolved_manifest["definitions"][name])
        # The CDK logs retries that ran out with a traceback; check says what failed in words (_unanswered).
        logging.getLogger(f"airbyte.HttpRequester.check {name}").addFilter(_without_traceback)
        return ModelToComponentFactory().create_component(HttpRequesterModel, definition, config, name=f"check {name}")

    def _unreadable_streams(self, config: Mapping[str, Any]) -> dict[str, str]:
        """One small request per resource (and one search): what the key's roles do not cover, with the role."""
        probe, search, blocked, klasses = self._requester("probe", config), self._requester("probe_search", config), {}, []

        def status_of(path: str, **kwargs: Any) -> int:
            requester = search if path.endswith("/search") else probe
            try:
                return requester.send_request(stream_slice=StreamSlice(partition={"path": path}, cursor_slice={}), **kwargs).status_code
            except AirbyteTracedException:
                return 0  # unknown: the sync will say

        statuses: dict[str, int] = {}  # resource -> HTTP status: streams sharing a list probe it once
        for stream in self.resolved_manifest["streams"]:
            parameters = stream.get("full_refresh_stream", stream)["$parameters"]
            resource = parameters.get("resource")
            if resource and resource not in statuses:
                if resource == "klasses":
                    try:
                        answer = probe.send_request(stream_slice=StreamSlice(partition={"path": "klasses"}, cursor_slice={}),
                                                    request_params={"pageSize": 1})
                        statuses[resource] = answer.status_code
                        klasses = [k.get("attributes", {}).get("name") for k in answer.json().get("data") or []] if answer.status_code == 200 else []
                    except (AirbyteTracedException, ValueError):
                        statuses[resource] = 0
                else:
                    statuses[resource] = status_of(resource, request_params={"pageSize": 1})
            if statuses.get(resource) in (401, 403):
                blocked[stream["name"]] = f"{stream['name']} (role {parameters['role']})"
        if "klasses" in blocked or (klasses and status_of(f"klasses/{klasses[0]}") in (401, 403)):
            blocked["kobjects"] = "kobjects (roles org.permission.klass.read and org.permission.kobject.read)"
        if status_of("customers/search", request_params={"pageSize": 1}, request_body_json={"queryContext": "customer"}) in (401, 403):
            blocked["search"] = "incremental syncs after the first, which search (role org.permission.search.create)"
        if status_of("metadata/customer") in (401, 403):
            blocked["metadata"] = "typed custom-attribute columns, which stay in `custom` (role org.permission.metadata.read)"
        return blocked


def _delegated(manifest: Mapping[str, Any]) -> Callable[[str], bool]:
    """Whether a stream is searched once it has a state and listed before (a StateDelegatingStream)."""
    resolved = ManifestReferenceResolver().preprocess_manifest(copy.deepcopy(manifest))
    names = {s.get("name") for s in resolved["streams"] if s.get("type") == "StateDelegatingStream"}
    templates = any(d["stream_template"].get("type") == "StateDelegatingStream" for d in resolved.get("dynamic_streams", []))
    return lambda name: name in names or (templates and name.startswith("kobjects_"))


def _unanswered(error: AirbyteTracedException, host: str) -> str:
    """What to fix when GET /v1/auth/tokens/current got no usable answer, from the fault under the CDK's error: its
    last response, or the name of the exception its retries ended on (the CDK keeps only its message)."""
    cause: Any = error
    while cause is not None:
        fault = getattr(cause, "response", None)
        if isinstance(fault, requests.Response):
            return f"Kustomer answered HTTP {fault.status_code} at {host}; it may be busy or down, try again later."
        name = str(cause).split(":", 1)[0] if isinstance(cause, requests.exceptions.HTTPError) else ""
        if name in ("ConnectionError", "ConnectTimeout", "ProxyError", "SSLError"):
            return (f"Could not connect to {host}. Check `organization` (an org that does not exist has no API host) "
                    "and, if set, `base_url`; a firewall or proxy may also block the connection.")
        if name.isidentifier():
            return f"The request to {host} failed ({name}); check `base_url` and try again."
        cause = cause.__cause__ or cause.__context__
    return f"The request to {host} failed ({error.message or 'no answer'}); check `base_url` and try again."


def _without_traceback(record: logging.LogRecord) -> bool:
    record.exc_info, record.exc_text = None, None
    return True


def _failed(message: str) -> AirbyteConnectionStatus:
    return AirbyteConnectionStatus(status=Status.FAILED, message=filter_secrets(message))
