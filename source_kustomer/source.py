"""The manifest, handed to the CDK's declarative runtime as it is, with what a manifest cannot say: which streams the
catalog reads in full refresh, the archived Singer connector's state blob, states that cannot be used, and a `check`
that tells a rejected key from a missing role."""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, List, Mapping, Optional
from urllib.parse import urlsplit

import requests
import yaml
from airbyte_cdk.models import (
    AirbyteConnectionStatus, AirbyteMessage, AirbyteStateBlob, AirbyteStateMessage, AirbyteStateMessageSerializer,
    AirbyteStateType, AirbyteStreamState, AirbyteStreamStatus, ConfiguredAirbyteCatalog, Status, SyncMode, Type,
)
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.sources.declarative.models.declarative_component_schema import (
    HttpResponseFilter as HttpResponseFilterModel,
)
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver
from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import ModelToComponentFactory
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets
from airbyte_cdk.utils.stream_status_utils import as_airbyte_message

from source_kustomer.components import (
    SEARCH_REACH, KustomerHeaders, config_error, current_token, kustomer_timestamp, to_utc,
)


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
        # stream -> (why its state cannot be used, the state): the stream is not read, its state stays as it was (`read`)
        self.unusable_states = {m.stream.stream_descriptor.name: (why, m) for m in state or []
                                if m.type == AirbyteStateType.STREAM and (why := _unusable(m, formats))}
        state = [m for m in state or [] if m.type != AirbyteStateType.STREAM or m.stream.stream_descriptor.name not in self.unusable_states]
        # A list checkpointed mid-way (components.ListRead): its position goes to the stream as `list_resume`, the rest
        # of its state (the cursor at the list's start) to the CDK, which reads the list again from there. A
        # substream's state may hold its parent's list position: it goes to the parent read for it, by the substream's
        # name.
        positions, state = _positions(state, "list")
        # kobjects searched klass by klass: what each klass's windows read, as `search_resume` (Windows).
        searched, state = _positions(state, "search")
        # A state too old for search is read from the list, from its time (`list_from` below). The CDK would do the
        # same from the start date, and first save an empty state, which an interruption would then keep: not given.
        # A substream's parent state too old for search: the CDK has the parent read its list, from that time.
        horizon = kustomer_timestamp(datetime.now(timezone.utc) - SEARCH_REACH)
        delegated = _delegated(manifest)
        list_from = {name: at for name, at in _cursor_times(state, formats, delegated).items() if at < horizon}
        state = [m for m in state if m.type != AirbyteStateType.STREAM or m.stream.stream_descriptor.name not in list_from
                 or not delegated(m.stream.stream_descriptor.name)]
        super().__init__(catalog=catalog, config=config, state=state, source_config=manifest, config_path=config_path)
        config = self.built_config()
        if isinstance(config, dict):  # derived for this run: never saved (a migration is saved before this)
            # Lists read in full refresh keep what changed during the sync (WithinCursorBounds).
            config["full_refresh_streams"] = [s.stream.name for s in (catalog.streams if catalog else []) if s.sync_mode == SyncMode.full_refresh]
            # A state older than search's reach is read from the list from its time, not from the start (the list
            # stream's start_datetime).
            config["list_from"] = list_from
            config["list_resume"] = positions
            config["search_resume"] = searched

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
        """Also the archived source-kustomer-singer's state, one Singer blob `{"bookmarks": {"<stream>": "<time>"}}`
        (as it is, or as the data of a LEGACY state message): each stream resumes from its bookmark."""
        blob = json.loads(Path(state_path).read_text()) if state_path else None
        legacy = [m.get("data") for m in blob if isinstance(m, dict) and m.get("type") == "LEGACY"] if isinstance(blob, list) else [blob]
        bookmarks = next((b["bookmarks"] for b in legacy if isinstance(b, dict) and isinstance(b.get("bookmarks"), dict)), None)
        if bookmarks is None:
            return super().read_state(state_path)
        return [AirbyteStateMessageSerializer.load({"type": "STREAM", "stream": {
            "stream_descriptor": {"name": name}, "stream_state": {"updatedAt": bookmark}}})
            for name, bookmark in bookmarks.items() if name in SINGER_STREAMS]

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """GET /v1/auth/tokens/current answers for any valid key, whatever its roles; failures say what to fix."""
        config = self.built_config() or config  # normalized, as the streams see it
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


# The archived connector's streams, all of them ours under the same names, with the same cursor (`updatedAt`).
SINGER_STREAMS = {"conversations", "customers", "kobjects", "messages", "notes", "shortcuts", "tags", "teams", "users"}
CURSORS = ("updatedAt", "createdAt", "conversationUpdatedAt", "publishedAt")  # the manifest's cursor fields


def _delegated(manifest: Mapping[str, Any]) -> Callable[[str], bool]:
    """Whether a stream is searched once it has a state and listed before (a StateDelegatingStream)."""
    resolved = ManifestReferenceResolver().preprocess_manifest(copy.deepcopy(manifest))
    names = {s.get("name") for s in resolved["streams"] if s.get("type") == "StateDelegatingStream"}
    templates = any(d["stream_template"].get("type") == "StateDelegatingStream" for d in resolved.get("dynamic_streams", []))
    return lambda name: name in names or (templates and name.startswith("kobjects_"))


def _positions(state: List[AirbyteStateMessage], key: str) -> tuple[dict[str, Any], List[AirbyteStateMessage]]:
    """stream -> the position its state holds under `key` (a substream's: its parent's), and the states without it."""
    positions, rest = {}, []
    for message in state:
        blob = message.stream.stream_state if message.type == AirbyteStateType.STREAM else None
        blob = copy.deepcopy(dict(blob.__dict__)) if blob is not None else {}
        holders = [blob, *_parents(blob)]
        found = [holder.pop(key) for holder in holders if isinstance(holder.get(key), Mapping)]
        if found:
            positions[message.stream.stream_descriptor.name] = found[0]
            message = _with_state(message, blob)
        rest.append(message)
    return positions, rest


def _parents(blob: Mapping[str, Any]) -> List[dict]:
    """The states of a substream's parents its state holds (SubstreamPartitionRouter's `parent_state`)."""
    parents = blob.get("parent_state")
    return [parent for parent in parents.values() if isinstance(parent, dict)] if isinstance(parents, dict) else []


def _with_state(message: AirbyteStateMessage, blob: Mapping[str, Any]) -> AirbyteStateMessage:
    return AirbyteStateMessage(type=AirbyteStateType.STREAM, stream=AirbyteStreamState(
        stream_descriptor=message.stream.stream_descriptor, stream_state=AirbyteStateBlob(blob)))


def _unusable(message: AirbyteStateMessage, formats: List[str]) -> Optional[str]:
    """Why a stream's state cannot be used (a cursor that is not a time in the manifest's formats), or None."""
    name, state = message.stream.stream_descriptor.name, message.stream.stream_state

    def bad_values(node: Any) -> List[Any]:
        if isinstance(node, list):
            return [bad for item in node for bad in bad_values(item)]
        if not isinstance(node, Mapping):
            return []
        return [value for key, value in node.items() if key in CURSORS and not _is_time(value, formats)] + [
            bad for key, value in node.items() if key not in CURSORS for bad in bad_values(value)]

    bad = bad_values(state.__dict__ if state is not None and not isinstance(state, Mapping) else state)
    if not bad:
        return None
    return (f"The saved state of stream {name} cannot be used: its cursor is {bad[0]!r}, not a date-time such as "
            f"'2024-01-31T12:00:00.000Z'. Reset (clear the data of) the stream {name} in Airbyte to sync it again from "
            "the start; the other streams are not affected.")


def _cursor_times(state: List[AirbyteStateMessage], formats: List[str], delegated: Callable[[str], bool]) -> dict[str, str]:
    """stream -> the time its list would be read from, in Kustomer's form: a listed-then-searched stream's state's
    `updatedAt` (kobjects: under `state`), a substream's parent's."""
    times = {}
    for message in state:
        if message.type == AirbyteStateType.STREAM and message.stream.stream_state is not None:
            name, blob = message.stream.stream_descriptor.name, message.stream.stream_state.__dict__
            parents = _parents(blob)
            if parents:
                at = parents[0].get("updatedAt")
            elif delegated(name):
                at = blob.get("updatedAt") or (blob.get("state") or {}).get("updatedAt")
            else:
                continue
            if _is_time(at, formats):
                times[name] = kustomer_timestamp(to_utc(at))
    return times


def _is_time(value: Any, formats: List[str]) -> bool:
    for form in formats:
        try:
            datetime.strptime(value, form)
            return True
        except (TypeError, ValueError):
            continue
    return False


def _failed(message: str) -> AirbyteConnectionStatus:
    return AirbyteConnectionStatus(status=Status.FAILED, message=filter_secrets(message))
