"""The few things the manifest cannot say in YAML: config normalization, request headers built once, record shape
(with typed custom-attribute columns and CSAT rows), safe next links, dropping the records a search restart reads
twice, deletion markers, and the org's rate budget."""

from __future__ import annotations

import ipaddress
import logging
import random
import re
import threading
import time
from collections import deque
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, MutableMapping
from urllib.parse import urlsplit

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import PaginationStrategy
from airbyte_cdk.sources.declarative.transformations.config_transformations.config_transformation import (
    ConfigTransformation,
)
from airbyte_cdk.sources.streams.call_rate import AbstractAPIBudget
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy, ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Record
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

LOGGER = logging.getLogger("airbyte")

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
        return kustomer_timestamp(_utc(str(value).strip()))
    except ValueError:
        raise config_error(
            f"The `start_date` field {str(value)[:40]!r} is not an ISO 8601 date or date-time. "
            "Use e.g. `2024-01-01` or `2024-01-01T00:00:00Z`, or leave it empty to sync everything."
        ) from None


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


def flatten(resource: dict, custom_columns: bool = False) -> dict:
    """JSON:API resource -> one flat row: attributes at top level, `<relationship>Id` keys for to-one links, and
    with `custom_columns` each custom attribute also as its own column `custom_<name>` (typed by the schema)."""
    row = resource.pop("attributes", None) or {}
    row.update(resource)  # the resource's own `id`, `type`, `relationships` and `links` win over attributes
    for name, relationship in (resource.get("relationships") or {}).items():
        data = relationship.get("data") if isinstance(relationship, dict) else None
        if isinstance(data, dict) and data.get("id") is not None:
            row.setdefault(f"{name}Id", data["id"])
    if custom_columns and isinstance(row.get("custom"), dict):
        row.update((f"custom_{name}", value) for name, value in row["custom"].items())
    return row


# Custom attribute name suffix -> the Airbyte type of its column (Kustomer types custom attributes by suffix).
CUSTOM_TYPES = {"Num": "number", "Bool": "boolean", "At": "timestamp_with_timezone", "Str": "string",
                "Txt": "string", "Url": "string", "Tree": "string", "Id": "string"}
_SUFFIX = re.compile(r"(?<=[a-z0-9])(" + "|".join(CUSTOM_TYPES) + r")$")


@dataclass
class KustomerHeaders(DeclarativeAuthenticator):
    """The headers of every request, `Authorization: Bearer <api_key>` and `Accept: application/json`, built once:
    a BearerAuthenticator and `request_headers` render four templates per request (about 4% of a sync's CPU)."""

    config: Mapping[str, Any] = field(repr=False)  # holds the key: never in a repr that a log might print
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._headers = {"Authorization": f"Bearer {self.config.get('api_key', '')}", "Accept": "application/json"}

    @property
    def auth_header(self) -> str:
        return "Authorization"

    @property
    def token(self) -> str:
        return self._headers["Authorization"]

    def get_auth_header(self) -> Mapping[str, Any]:
        return self._headers


class Progress:
    """Pages and records read per stream: logged every half minute while a sync runs, summed up at the end."""

    EVERY = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}  # stream -> [pages, records]
        self._logged_at: dict[str, float] = {}

    def page(self, stream: str, records: int) -> None:
        with self._lock:
            counts = self._counts.setdefault(stream, [0, 0])
            counts[0] += 1
            counts[1] += records
            now = time.monotonic()
            if now - self._logged_at.setdefault(stream, now) < self.EVERY:
                return
            self._logged_at[stream] = now
        LOGGER.info(f"{stream}: {counts[0]:,} pages, {counts[1]:,} records read so far")

    def summary(self) -> str:
        with self._lock:
            lines = [f"{name}: {pages:,} pages, {records:,} records" for name, (pages, records) in sorted(self._counts.items())]
        return "Read from Kustomer: " + ("; ".join(lines) if lines else "nothing")


PROGRESS = Progress()


class JsonApiRecords(RecordExtractor):
    """`data` of a JSON:API page, each resource flattened (so cursors and filters see `updatedAt` directly).

    Not `DpathExtractor` + transformations: the foreign-key names come from each record's own relationships.
    """

    parameters: Mapping[str, Any]

    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        self._stream = (parameters or {}).get("name", "?")
        self._custom_columns = bool((parameters or {}).get("metadata"))  # streams whose schema types them

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        data = response.json().get("data") or []
        data = data if isinstance(data, list) else [data]
        PROGRESS.page(self._stream, len(data))
        for resource in data:
            yield flatten(resource, self._custom_columns)


class SatisfactionResponses(JsonApiRecords):
    """A conversation's CSAT survey (`satisfactionLevel`) as one row, for conversations that were sent one."""

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        for conversation in super().extract_records(response):
            survey = conversation.get("satisfactionLevel")
            if isinstance(survey, dict) and survey.get("status"):
                yield {**{k: v for k, v in survey.items() if k not in ("createdAt", "updatedAt")},
                       "id": conversation["id"], "conversationId": conversation["id"],
                       "customerId": conversation.get("customerId"), "satisfaction": conversation.get("satisfaction"),
                       "surveyCreatedAt": survey.get("createdAt"), "surveyUpdatedAt": survey.get("updatedAt"),
                       "createdAt": conversation.get("createdAt"), "updatedAt": conversation.get("updatedAt")}


@dataclass
class WarnWhenIgnored(DefaultErrorHandler):
    """The default error handler, but an ignored response's message is a warning: the CDK logs it as info."""

    def interpret_response(self, response_or_exception: Any) -> ErrorResolution:
        resolution = super().interpret_response(response_or_exception)
        if resolution.response_action == ResponseAction.IGNORE and resolution.error_message:
            LOGGER.warning(resolution.error_message)
        return resolution


class CustomAttributeTypes(RecordExtractor):
    """GET /v1/metadata/<resource> -> `{"fields": [{"name": "custom_<attribute>", "type": <Airbyte type>}]}`, what
    the manifest's DynamicSchemaLoader reads."""

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        properties = ((response.json().get("data") or {}).get("attributes") or {}).get("properties") or {}
        fields = []
        for name, spec in properties.items():
            suffix = _SUFFIX.search(name)
            if suffix and not (isinstance(spec, dict) and spec.get("deletedAt")):  # deleted attributes: no column
                multi = suffix[1] == "Id" and isinstance(spec, dict) and spec.get("multi")
                fields.append({"name": f"custom_{name}", "type": "array" if multi else CUSTOM_TYPES[suffix[1]]})
        yield {"fields": fields}


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
class WithinCursorBounds(RecordFilter):
    """Keeps the records whose `cursor_field` lies within the slice's `start_time`..`end_time`, as the CDK's
    `is_client_side_incremental` filter does, but compares Kustomer's fixed-width timestamps as strings: the CDK's
    filter parses every record's timestamp twice with `strptime`, about a sixth of a sync's CPU. A slice without
    bounds (a stream read without a cursor) keeps every record."""

    cursor_field: str = "updatedAt"

    def filter_records(self, records: Iterable[Mapping[str, Any]], stream_state: Any, stream_slice: Any = None,
                       next_page_token: Any = None) -> Iterable[Mapping[str, Any]]:
        bounds = getattr(stream_slice, "cursor_slice", None) or {}
        if "start_time" not in bounds or "end_time" not in bounds:
            yield from records
            return
        # Kustomer's timestamps are milliseconds: a bound between two milliseconds rounds inwards, so it stays exact.
        start = kustomer_timestamp(_utc(bounds["start_time"]) + timedelta(microseconds=999))
        end, field = kustomer_timestamp(_utc(bounds["end_time"])), self.cursor_field
        for record in records:
            value = record.get(field)
            if isinstance(value, str) and not (len(value) == 24 and value[10] == "T" and value[-1] == "Z"):
                try:  # another ISO 8601 form (no milliseconds, an offset): compared in Kustomer's form
                    value = kustomer_timestamp(_utc(value))
                except ValueError:
                    value = None
            if not isinstance(value, str) or start <= value <= end:  # no timestamp: kept, as the CDK keeps it
                yield record


def _utc(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("z", "Z"))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


@dataclass
class NextLink(PaginationStrategy):
    """Follows `links.next` (a relative `/v1/...` path) on the configured API host, and nowhere else, until a page
    has none or no records (some lists answer an empty last page that still links onwards). Pages hold
    `parameters.page_size` records, 100 by default.

    The returned token is an absolute URL on `config.api_url`, so the API key is only ever sent there. Read from the
    page `parse_once` parsed: CursorPagination would render two templates per page."""

    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._page_size = int(parameters.get("page_size") or 100)

    @property
    def initial_token(self) -> Any:
        return None

    def get_page_size(self) -> int:
        return self._page_size

    def next_page_token(self, response: Any, last_page_size: int, last_record: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            page = response.json()
        except ValueError:
            return None
        link = (page.get("links") or {}).get("next") if isinstance(page, dict) else None
        if not link or not page.get("data"):
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


class DeletionMarkers:
    """Wraps a searched stream's partitions: after each window is read, the records of the stream's type that the
    audit log says were hard-deleted in that window follow, as markers with `deleted`, `deletedAt` and
    `_ab_cdc_deleted_at` set (Airbyte's convention: a deduplicated destination drops those rows). They are read
    through the `deletions` stream's partitions, so its requester, filters and error handling apply."""

    def __init__(self, partitions: Any, deletions: Any, object_type: str) -> None:
        self._partitions, self._deletions, self._type = partitions, deletions, object_type

    def generate(self) -> Iterable[Partition]:
        for partition in self._partitions.generate():
            yield _WithMarkers(partition, self._deletions, self._type)


class _WithMarkers(Partition):
    def __init__(self, partition: Partition, deletions: Any, object_type: str) -> None:
        self._partition, self._deletions, self._type = partition, deletions, object_type

    def read(self) -> Iterable[Record]:
        yield from self._partition.read()
        window = self._partition.to_slice()
        for deleted in self._deletions.create(window).read():
            row = deleted.data
            if row.get("objectType") == self._type:
                marker = {"id": row["id"], "type": self._type, "deleted": True, "deletedAt": row["deletedAt"],
                          "deletedById": row.get("deletedById"), "updatedAt": row["deletedAt"],
                          "_ab_cdc_deleted_at": row["deletedAt"]}
                yield Record(data=marker, stream_name=self.stream_name(), associated_slice=window)

    def to_slice(self) -> Mapping[str, Any] | None:
        return self._partition.to_slice()

    def stream_name(self) -> str:
        return self._partition.stream_name()

    def __hash__(self) -> int:
        return hash(self._partition)


def reset_at(value: Any, now: float) -> float | None:
    """`x-ratelimit-reset` as an epoch time: Kustomer's docs say epoch seconds, its examples "now + 60s"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 1e9 else now + number


def parse_once(response: Any) -> None:
    """The CDK reads an answer's JSON up to four times (error filters, records); parse it once, with orjson."""
    try:
        body = orjson.loads(response.content)
    except (orjson.JSONDecodeError, TypeError, AttributeError):
        return  # not JSON: `response.json()` raises as before, and the error handler retries
    response.json = lambda **_: body


class OrgBudget(AbstractAPIBudget):
    """Keeps the sync within its share of Kustomer's rate limits, and sends nothing to any other host.

    Kustomer gives an org one budget per minute, shared by its agents and every API key; each response says the
    limit, what is left and when it refills (`x-ratelimit-*`). Requests pause while no more than the agents'
    reserve, (100 - max_api_usage_percent)% of the limit, is left, until the refill. Searches have their own
    limit of 100 a minute for API keys, of which the sync takes the same share. A 429 pauses every request.
    """

    SEARCH_LIMIT, WINDOW = 100, 60.0

    def __init__(self, api_url: str, usage_percent: float, clock=None, sleep=None) -> None:
        self._host = urlsplit(api_url).netloc
        self._share = min(max(float(usage_percent), 1.0), 100.0) / 100
        self._clock = clock or (lambda: time.time())
        self._sleep = sleep or (lambda seconds: time.sleep(seconds))  # looked up at call time: tests replace it
        self._lock = threading.Lock()
        self._limit = self._remaining = self._reset_at = None
        self._searches: deque[float] = deque()
        self._search_paused_until = 0.0
        self._announced_until = 0.0

    def get_matching_policy(self, request: Any) -> None:
        return None

    def acquire_call(self, request: Any, block: bool = True, timeout: float | None = None) -> None:
        if urlsplit(request.url).netloc != self._host:  # a redirect: requests would follow it with this session
            raise AirbyteTracedException(
                message=f"Kustomer redirected a request to another host ({urlsplit(request.url).hostname}); the sync "
                "stopped rather than follow it. Check `base_url`.",
                failure_type=FailureType.config_error,
            )
        search = request.method == "POST" and request.url.split("?")[0].endswith("/search")
        while True:
            with self._lock:
                now = self._clock()
                wait, why = self._wait(now, search)
                if wait <= 0:
                    if self._remaining is not None:
                        self._remaining -= 1  # until the response tells
                    if search:
                        self._searches.append(now)
                    return
                if now + wait > self._announced_until + 1:  # once per pause, whichever thread meets it first
                    self._announced_until = now + wait
                    LOGGER.info(f"Kustomer rate limit: pausing requests for {wait:.0f} s ({why}).")
            self._sleep(wait)

    def _wait(self, now: float, search: bool) -> tuple[float, str]:
        reset_in = (self._reset_at or 0) - now
        if self._remaining is not None and reset_in > 0:
            reserve = (self._limit or 0) * (1 - self._share)
            if self._remaining <= reserve:
                kept = f"{100 - self._share * 100:.0f}% kept for agents" if reserve else "none left"
                return reset_in, f"{self._remaining} of the org's {self._limit} requests left, {kept}"
        if search:
            if self._search_paused_until > now:
                return self._search_paused_until - now, "Kustomer limits searches to 100 a minute"
            while self._searches and self._searches[0] <= now - self.WINDOW:
                self._searches.popleft()
            if len(self._searches) >= max(1, int(self.SEARCH_LIMIT * self._share)):
                return self._searches[0] + self.WINDOW - now, f"{len(self._searches)} searches in the last minute"
        return 0.0, ""

    def update_from_response(self, request: Any, response: Any) -> None:
        parse_once(response)
        headers = getattr(response, "headers", None) or {}
        with self._lock:
            now = self._clock()
            reset = reset_at(headers.get("x-ratelimit-reset"), now)
            try:
                limit, remaining = int(headers["x-ratelimit-limit"]), int(headers["x-ratelimit-remaining"])
            except (KeyError, ValueError):
                limit = remaining = None
            if limit is not None:
                new_window = reset is None or self._reset_at is None or reset > self._reset_at + 0.5
                self._limit, self._reset_at = limit, reset if reset is not None else self._reset_at
                # Within a window only others' use lowers what is left; requests still in flight already did.
                self._remaining = remaining if new_window or self._remaining is None else min(self._remaining, remaining)
            if getattr(response, "status_code", None) == 429:
                until = reset if reset is not None else now + self.WINDOW
                if remaining:  # the org has budget left, so it was the search limit
                    self._search_paused_until = until
                else:
                    self._remaining, self._reset_at = 0, until


class Backoff(BackoffStrategy):
    """Waits before a retry: exponential with jitter for faults; for a 429 the budget above does the waiting."""

    def backoff_time(self, response_or_exception: Any, attempt_count: int) -> float:
        if getattr(response_or_exception, "status_code", None) == 429:
            return 0.1
        return min(60.0, 2.0 ** max(attempt_count - 1, 0)) * random.uniform(0.5, 1.0)
