"""The few things the manifest cannot say in YAML: config normalization, record shape, safe next links,
and dropping the records a search restart reads twice."""

from __future__ import annotations

import ipaddress
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, MutableMapping
from urllib.parse import urlsplit

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.cursor_pagination_strategy import (
    CursorPaginationStrategy,
)
from airbyte_cdk.sources.declarative.transformations.config_transformations.config_transformation import (
    ConfigTransformation,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

# `acme.kustomerapp.com` (web app), `acme.api.kustomerapp.com` (org API host), `acme.api.prod2.kustomerapp.com`.
_ORG_HOST = re.compile(r"(?P<org>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.api(?:\.prod\d+)?)?\.kustomerapp\.com(?::\d+)?")
_ORG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Hosts that are Kustomer's shared regional API hosts, not an organization.
_NOT_ORGS = {"api", "www", "app", "developer", "help"}
INDEX_LAG = 60  # seconds search may trail writes by; the sync leaves them for the next one
ORG_EXAMPLE = "e.g. `acme` for https://acme.kustomerapp.com"


def config_error(message: str) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


def normalize_organization(value: Any) -> str:
    """Reduces every form a user pastes (name, web or API host, URL with path) to the org subdomain."""
    if not isinstance(value, str) or not value.strip():
        raise config_error(f"The `organization` field is empty. Enter your Kustomer org's subdomain, {ORG_EXAMPLE}.")
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", value.strip().lower())
    host, slash, _path = text.partition("/")
    match = _ORG_HOST.fullmatch(host)
    org = match["org"] if match else (host if not slash and _ORG.fullmatch(host) else None)
    if org is None or org in _NOT_ORGS:
        shown = value.strip()[:80]
        raise config_error(
            f"The `organization` field {shown!r} is not a Kustomer organization. Enter the subdomain you sign in at, "
            f"{ORG_EXAMPLE} (a regional or proxy host goes in `base_url`)."
        )
    return org


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(value: Any) -> str:
    """Returns the API root without a trailing `/v1`; plain http only towards this machine."""
    text = str(value).strip().rstrip("/")
    text = text[: -len("/v1")] if text.endswith("/v1") else text
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        parts.port  # raises on a malformed port
    except ValueError:
        parts, host = None, ""
    example = "e.g. `https://api.prod2.kustomerapp.com` or, for a local test server, `http://127.0.0.1:8585`"
    if parts is None or not host or parts.username or parts.password or parts.query or parts.fragment or "@" in text:
        shown = "" if "@" in text else f" {text[:80]!r}"  # never echo credentials pasted into the URL
        raise config_error(f"The `base_url` field{shown} is not a plain URL of a host. Use one like {example}.")
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(host)):
        raise config_error(
            f"The `base_url` field must start with https:// (plain http is allowed only for a loopback host such as "
            f"127.0.0.1 or localhost), {example}; got {text[:80]!r}."
        )
    return text


def normalize_start_date(value: Any) -> str:
    """ISO 8601 date or date-time (UTC if no offset) -> Kustomer's own `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("z", "Z"))
    except ValueError:
        raise config_error(
            f"The `start_date` field {str(value)[:40]!r} is not an ISO 8601 date or date-time. "
            "Use e.g. `2024-01-01` or `2024-01-01T00:00:00Z`, or leave it empty to sync everything."
        ) from None
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return kustomer_timestamp(moment)


def kustomer_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class NormalizeConfig(ConfigTransformation):
    """Adds `api_url` (scheme://host[/prefix], no /v1), `start_datetime`, and `cursor_end`, where every sync stops.

    `cursor_end` is a minute before the sync starts: search's index lags behind writes, so the last minute, and
    whatever changes while the sync runs, is left to the next sync rather than half-read by this one."""

    def transform(self, config: MutableMapping[str, Any]) -> None:
        if "organization" not in config:
            return  # the spec check reports the missing required field
        org = normalize_organization(config["organization"])
        config["organization"] = org
        base_url = config.get("base_url")
        config["api_url"] = normalize_base_url(base_url) if base_url else f"https://{org}.api.kustomerapp.com"
        if config.get("start_date"):
            config["start_datetime"] = normalize_start_date(config["start_date"])
        config.setdefault("cursor_end", kustomer_timestamp(datetime.now(timezone.utc) - timedelta(seconds=INDEX_LAG)))


def flatten(resource: dict) -> dict:
    """JSON:API resource -> one flat row: attributes at top level, `<relationship>Id` keys for to-one links."""
    row = resource.pop("attributes", None) or {}
    row.update(resource)  # the resource's own `id`, `type`, `relationships` and `links` win over attributes
    for name, relationship in (resource.get("relationships") or {}).items():
        data = relationship.get("data") if isinstance(relationship, dict) else None
        if isinstance(data, dict) and data.get("id") is not None:
            row.setdefault(f"{name}Id", data["id"])
    return row


class JsonApiRecords(RecordExtractor):
    """`data` of a JSON:API page, each resource flattened (so cursors and filters see `updatedAt` directly).

    Not `DpathExtractor` + transformations: the foreign-key names come from each record's own relationships.
    """

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        data = orjson.loads(response.content or b"{}").get("data") or []
        for resource in data if isinstance(data, list) else [data]:
            yield flatten(resource)


class OncePerRestart(RecordFilter):
    """Drops the records a search restart reads twice: those at the restart's `updatedAt` already emitted.

    A query that reaches the 100-page cap restarts with `gte` its last `updatedAt`, so every record sharing that
    timestamp comes again. Per window, only the ids at the latest timestamp are remembered.
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._latest: dict[Any, tuple[str, set]] = {}
        self._lock = threading.Lock()

    def filter_records(self, records: Iterable[Mapping[str, Any]], stream_state: Any, stream_slice: Any = None,
                       next_page_token: Any = None) -> Iterable[Mapping[str, Any]]:
        # A restart moves the window's start; its partition and end stay, so they name the window.
        key = (repr(getattr(stream_slice, "partition", None)), repr((getattr(stream_slice, "cursor_slice", None) or {}).get("end_time")))
        for record in records:
            updated_at, record_id = record.get("updatedAt") or "", record.get("id")
            with self._lock:
                latest, ids = self._latest.get(key, ("", set()))
                if updated_at == latest and record_id in ids:
                    continue
                if updated_at > latest:
                    self._latest[key] = (updated_at, {record_id})
                else:
                    ids.add(record_id)
                    self._latest[key] = (latest, ids)
            yield record


@dataclass
class NextLink(CursorPaginationStrategy):
    """Follows `links.next` (a relative `/v1/...` path) on the configured API host, and nowhere else.

    The returned token is an absolute URL on `config.api_url`, so the API key is only ever sent there.
    """

    def next_page_token(self, response: Any, last_page_size: int, last_record: Any, *args: Any, **kwargs: Any) -> Any:
        link = super().next_page_token(response, last_page_size, last_record, *args, **kwargs)
        if not link:
            return None
        api_url = self.config["api_url"]
        link = str(link)
        if link.startswith(api_url + "/"):
            link = link[len(api_url) :]
        if not link.startswith("/v1/") or "//" in link or "@" in link or ".." in link:
            raise AirbyteTracedException(
                message="Kustomer returned a next-page link to another host or an unexpected path; the sync stopped "
                "rather than send the API key there.",
                internal_message=f"refused links.next {link[:200]!r}",
                failure_type=FailureType.system_error,
            )
        return api_url + link
