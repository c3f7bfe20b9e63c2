"""The few things the manifest cannot say in YAML, each named by it: config normalization, the authenticator that
carries the org's rate budget, record shape (with typed custom-attribute columns and CSAT rows), safe next links,
dropping the records a search restart reads twice, windows that move the state and carry deletion markers, and error
handling that tells a missing role from a refused key."""

import copy
import ipaddress
import logging
import math
import random
import re
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, List, Mapping, MutableMapping, Optional
from urllib.parse import urljoin, urlsplit

import isodate
import orjson
import requests
from airbyte_cdk.models import (
    AirbyteMessage, AirbyteStateBlob, AirbyteStateMessage, AirbyteStateType, AirbyteStreamState, FailureType,
    StreamDescriptor, Type,
)
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.declarative.partition_routers.substream_partition_router import SubstreamPartitionRouter
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import PaginationStrategy
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.declarative.schema.schema_loader import SchemaLoader
from airbyte_cdk.sources.declarative.transformations.config_transformations.config_transformation import (
    ConfigTransformation,
)
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy, ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Record, StreamSlice
from airbyte_cdk.sources.utils.transform import TransformConfig, TypeTransformer
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

LOGGER = logging.getLogger("airbyte")

# `acme.kustomerapp.com` (web app), `acme.api.kustomerapp.com` (org API host), `acme.api.prod2.kustomerapp.com`.
_ORG_HOST = re.compile(r"(?P<org>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.api(?:\.prod\d+)?)?\.kustomerapp\.com(?::\d+)?")
_ORG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Hosts that are Kustomer's shared regional API hosts, not an organization.
_NOT_ORGS = {"api", "www", "app", "developer", "help"}
REFUSED_REDIRECT = "x-source-kustomer-refused-redirect"  # set on a response whose redirect was not followed
SHARED_HOST = "https://api.kustomerapp.com"
SEARCH_REACH = timedelta(days=700)  # how far back search sees: the manifest's P700D (api_retention_period)
INDEX_LAG = 60  # seconds search may trail writes by; the sync leaves them for the next one
ORG_EXAMPLE = "e.g. `acme` for https://acme.kustomerapp.com"
# A stream's state at least this often (the platform and destinations commit on states), in records and seconds.
CHECKPOINT_RECORDS, CHECKPOINT_SECONDS = 5_000, 120.0
# The Substream reading its parent stream in this thread, if any: the parent's list reports its position to it. A
# parent is read inside the child's partition router (SubstreamPartitionRouter.stream_slices), in the one thread
# that generates the child's partitions, which nothing else runs in until the parent is read whole.
_READING_PARENT = threading.local()
VERIFY_PAGES = 100  # list pages between two looks at the audit log for deletes that shift pages (1% more requests)
MOST_AHEAD = 16  # list pages in flight per stream at most, unless `num_workers` says otherwise


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
        return kustomer_timestamp(to_utc(str(value).strip()))
    except ValueError:
        raise config_error(
            f"The `start_date` field {str(value)[:40]!r} is not an ISO 8601 date or date-time. "
            "Use e.g. `2024-01-01` or `2024-01-01T00:00:00Z`, or leave it empty to sync everything."
        ) from None


def normalize_workers(value: Any) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if not 1 <= number <= MOST_AHEAD:
        raise config_error(f"The `num_workers` field must be a whole number from 1 to {MOST_AHEAD}, or empty to follow "
                           f"the rate budget; got {str(value)[:20]!r}.")
    return number


def kustomer_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class NormalizeConfig(ConfigTransformation):
    """Adds `api_url` (scheme://host[/prefix], no /v1), `start_datetime`, and `cursor_end`, where every sync stops.

    `cursor_end` is a minute before the sync starts: search's index lags behind writes, so the last minute, and
    whatever changes while the sync runs, is left to the next sync rather than half-read by this one."""

    def transform(self, config: MutableMapping[str, Any]) -> None:
        base_url = config.get("base_url")
        if "organization" in config:
            config["organization"] = normalize_organization(config["organization"])
            config["api_url"] = normalize_base_url(base_url) if base_url else f"https://{config['organization']}.api.kustomerapp.com"
        else:  # as the archived source-kustomer-singer: Kustomer's shared (US) host
            config["api_url"] = normalize_base_url(base_url) if base_url else SHARED_HOST
        if config.get("start_date"):
            config["start_datetime"] = normalize_start_date(config["start_date"])
        config.setdefault("cursor_end", kustomer_timestamp(datetime.now(timezone.utc) - timedelta(seconds=INDEX_LAG)))
        if config.get("num_workers") not in (None, ""):
            config["num_workers"] = normalize_workers(config["num_workers"])


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
    """Signs every request, and keeps the sync within its share of the org's rate budget (OrgBudget).

    The CDK's HTTP client calls an authenticator before every attempt, retries included, and shows it every response
    (`ResponseAwareAuthenticator`): the two calls a rate budget needs. The manifest's `api_budget` cannot hold this one
    (it takes fixed or moving windows of a set size, not a share of the limit the headers report, with a reserve for
    agents), so the budget comes with the authenticator every requester already names.

    The headers, `Authorization: Bearer <api_key>` and `Accept: application/json`, are built once."""

    config: Mapping[str, Any] = field(repr=False)  # holds the key: never in a repr that a log might print
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._headers = {"Authorization": f"Bearer {self.config.get('api_key', '')}", "Accept": "application/json"}
        self._budget = OrgBudget.of(self.config) if self.config.get("api_url") else None

    def __call__(self, request: requests.PreparedRequest) -> Any:
        if self._budget is not None:
            self._budget.acquire_call(request)  # may wait for the org's budget
        if self._refuse_redirect not in request.hooks["response"]:  # a retry signs the same request again
            request.register_hook("response", self._refuse_redirect)
        return super().__call__(request)

    def _refuse_redirect(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """A redirect to another host is not followed (KustomerErrors fails the stream with REFUSED_REDIRECT)."""
        location = response.headers.get("location") if response.is_redirect else None
        if location and _off_host(urljoin(response.url, location), self.config):
            response.headers[REFUSED_REDIRECT] = location
            del response.headers["location"]  # what requests follows
        return response

    def update_from_response(self, request: requests.PreparedRequest, response: requests.Response) -> None:
        if self._budget is not None:
            self._budget.update_from_response(request, response)

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


class KeyCheck:
    """Whether Kustomer refuses the API key itself, asked once per sync at the first 401: Kustomer answers 401 for a
    bad key and for a key without a role or a paid feature alike, and only GET /v1/auth/tokens/current, which works
    for any valid key whatever its roles, tells them apart."""

    _lock = threading.Lock()
    _answers: dict[tuple[str, str], bool | None] = {}

    @classmethod
    def refused(cls, config: Mapping[str, Any]) -> bool | None:
        """True: the key is refused; False: it works (a 401 means a missing role); None: Kustomer did not say."""
        key = (str(config.get("api_url", "")), str(config.get("api_key", "")))
        with cls._lock:  # other threads meeting a 401 wait for the one answer
            if key not in cls._answers:
                cls._answers[key] = cls._ask(config)
            return cls._answers[key]

    @classmethod
    def forget(cls) -> None:
        with cls._lock:
            cls._answers.clear()

    @staticmethod
    def _ask(config: Mapping[str, Any]) -> bool | None:
        for attempt in range(3):
            if attempt:
                time.sleep(2**attempt)
            try:
                status = current_token(config).status_code
            except requests.exceptions.RequestException:
                status = None
            if status in (200, 401):
                return status == 401
        return None


def current_token(config: Mapping[str, Any]) -> requests.Response:
    """GET /v1/auth/tokens/current, which answers for any valid key whatever its roles. Never following a redirect:
    it would carry the key to wherever it points."""
    headers = KustomerHeaders(config, {}).get_auth_header()
    return requests.get(f"{config['api_url']}/v1/auth/tokens/current", headers=headers, timeout=(10, 60),
                        allow_redirects=False)


@dataclass
class KustomerErrors(DefaultErrorHandler):
    """The manifest's error handling, with what a filter list cannot say:

    - A 401 that the filters skip (a missing role) is a rejected key, failed with `bad_key`, when Kustomer refuses the
      key itself (KeyCheck); if Kustomer cannot say, the stream fails as a transient error, to be retried.
    - The first skipped answer of each status is logged as a warning (the CDK logs them as info), and kept in
      `ignored`: a stream refused (401/403) does not move its state past what it could not read (Windows)."""

    bad_key: Optional[Any] = None  # an HttpResponseFilter: the message of a rejected key
    refusals: List[int] = field(default_factory=lambda: [401, 403])  # skipped answers that mean "not readable"

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self.ignored: dict[int, str] = {}  # HTTP status -> the first skip message
        self._lock = threading.Lock()

    def interpret_response(self, response_or_exception: Any) -> ErrorResolution:
        refused = getattr(response_or_exception, "headers", {}).get(REFUSED_REDIRECT)
        if refused:  # KustomerHeaders did not follow it
            return ErrorResolution(ResponseAction.FAIL, FailureType.config_error, "Kustomer redirected a request to "
                                   f"another host ({urlsplit(refused).hostname}); the sync stopped rather than follow "
                                   "it. Check `base_url`.")
        resolution = super().interpret_response(response_or_exception)
        status = getattr(response_or_exception, "status_code", None)
        if resolution.response_action != ResponseAction.IGNORE or status is None:
            return resolution
        if status == 401:
            refused = KeyCheck.refused(self.config)
            if refused and self.bad_key is not None:
                return self.bad_key.matches(response_or_exception)
            if refused is None:
                return ErrorResolution(ResponseAction.FAIL, FailureType.transient_error,
                                       "Kustomer answered HTTP 401, and GET /v1/auth/tokens/current did not answer to "
                                       "tell a rejected key from a missing role; the stream will be retried.")
        with self._lock:
            first = status not in self.ignored
            self.ignored.setdefault(status, resolution.error_message or f"HTTP {status}")
        if first and resolution.error_message:
            LOGGER.warning(resolution.error_message)
        return resolution

    @property
    def refused(self) -> bool:
        """Kustomer refused a request of this stream (a missing role or paid feature)."""
        return any(status in self.ignored for status in self.refusals)


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
    bounds (a stream read without a cursor) keeps every record.

    A stream the catalog reads in full refresh (`full_refresh_streams`, which SourceKustomer adds to the config) keeps
    the records changed after the sync's end too: its state is not used, and an overwritten table must not lose them.
    An incremental stream must not: they would move its state past changes it has not read."""

    cursor_field: str = "updatedAt"

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._open_ended = parameters.get("name") in (self.config.get("full_refresh_streams") or ())

    def filter_records(self, records: Iterable[Mapping[str, Any]], stream_state: Any, stream_slice: Any = None,
                       next_page_token: Any = None) -> Iterable[Mapping[str, Any]]:
        bounds = getattr(stream_slice, "cursor_slice", None) or {}
        if "start_time" not in bounds or "end_time" not in bounds:
            yield from records
            return
        # Kustomer's timestamps are milliseconds: a bound between two milliseconds rounds inwards, so it stays exact.
        start = kustomer_timestamp(to_utc(bounds["start_time"]) + timedelta(microseconds=999))
        end = "~" if self._open_ended else kustomer_timestamp(to_utc(bounds["end_time"]))  # "~" sorts after any time
        field = self.cursor_field
        for record in records:
            value = record.get(field)
            if isinstance(value, str) and not (len(value) == 24 and value[10] == "T" and value[-1] == "Z"):
                try:  # another ISO 8601 form (no milliseconds, an offset): compared in Kustomer's form
                    value = kustomer_timestamp(to_utc(value))
                except ValueError:
                    value = None
            if not isinstance(value, str) or start <= value <= end:  # no timestamp: kept, as the CDK keeps it
                yield record


def to_utc(value: Any) -> datetime:
    text = str(value)
    # Python 3.10's fromisoformat reads no "Z" (3.11's does).
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("z", "Z") else text)
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


@dataclass
class Windows(Retriever):
    """Reads a stream's slices with `records`, or with `search` where given and the slice starts less than
    `search_within` (an ISO 8601 duration) ago: a first sync from a recent `start_date` searches. For a stream with
    `deletions` (customers, conversations, messages continuing from a state), the slice's records are followed by a
    marker for each record of the stream's type that the audit log says was hard-deleted in the slice's window:
    `deleted`, `deletedAt` and `_ab_cdc_deleted_at` set, Airbyte's convention for a deduplicated destination to drop
    the row.

    With `page_numbers`, a list is read by page number with pages requested ahead (ListRead): as fast as the rate
    budget allows, checkpointed by its position. A search window (sorted by its cursor) is checkpointed by the last
    cursor value read. Either way the stream's state moves at least every CHECKPOINT_RECORDS records.

    Then it tells the stream's cursor that the slice was read through its end, so the stream's state moves past
    windows that held no records (the CDK's state stops at the last record read) and an idle sync does not read
    history again. Not after a refusal (a missing role): what was not read stays to be read."""

    records: Retriever
    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]
    deletions: Optional[Retriever] = None
    search: Optional[Retriever] = None
    search_within: str = "P700D"
    page_numbers: bool = False  # `records` is a list paged by `page` and `pageSize`
    sorted: bool = False  # `records` come in cursor order (a search): checkpointed within a window
    shifts: Optional[Retriever] = None  # the audit log's deletes of `deletion_type`: they shift a list's pages
    cursor: Optional[Any] = None  # the stream's cursor, passed by the CDK's factory to the stream's retriever
    partition_router: Optional[Any] = None  # the retriever's `partition_router`, passed by the CDK's factory

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.name = parameters.get("name", "")
        # Where this stream's list position is kept: a parent copy read for a substream keeps its position in the
        # substream's state, so under the substream's name (`stream_name`, which the substream passes down).
        self.key = parameters.get("stream_name") or self.name
        self.page_size = int(parameters.get("page_size") or 100)
        self.type = parameters.get("deletion_type")
        self._markers_off: Optional[str] = None  # why markers are skipped for the rest of the sync
        self._lock = threading.Lock()
        self._pool: Optional[ThreadPoolExecutor] = None
        self._positions: Optional[tuple[dict, set]] = None  # see positions()
        self._warned: set[str] = set()
        self._unsaved, self._saved_at = 0, time.monotonic()  # records since the last state this class emitted, and when
        self._covered: Optional[dict[str, list]] = None  # klass -> `updatedAt` ranges searched whole (_klass_window)
        self._reading: dict[tuple[str, str], str] = {}  # (klass, window start) -> the last `updatedAt` read in it

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[Any]:
        records, start = self.records, (getattr(stream_slice, "cursor_slice", None) or {}).get("start_time")
        if self.search is not None and start and to_utc(start) >= datetime.now(timezone.utc) - isodate.parse_duration(self.search_within):
            records = self.search
        if records is self.records and self.page_numbers:
            yield from ListRead(self, records, records_schema, stream_slice).read()
        elif records is self.search or self.sorted:
            yield from self._checkpointed(records, records_schema, stream_slice)
        elif isinstance(self.partition_router, Substream):
            yield from self._substream_checkpoints(records.read_records(records_schema, stream_slice))
        else:
            yield from records.read_records(records_schema, stream_slice)
        if self.deletions is not None and self._markers_off is None:
            yield from self._markers(stream_slice)
        end = (getattr(stream_slice, "cursor_slice", None) or {}).get("end_time")
        if end and self.cursor is not None and not _refused(records):
            field = self.cursor.cursor_field.cursor_field_key
            self.cursor.observe(Record(data={field: end}, stream_name="", associated_slice=stream_slice))

    def _checkpointed(self, retriever: Retriever, schema: Mapping[str, Any], window: Any) -> Iterable[Any]:
        """The records, with the stream's cursor told every CHECKPOINT_RECORDS records (or CHECKPOINT_SECONDS) that
        the window is read up to the last cursor value: as long as they come in cursor order (search sorts by it)."""
        bounds, partition = getattr(window, "cursor_slice", None) or {}, getattr(window, "partition", None) or {}
        if self.cursor is not None and "start_time" in bounds and "klass" in partition:
            yield from self._klass_window(retriever, schema, window)
            return
        records = retriever.read_records(schema, window)
        if self.cursor is None or "start_time" not in bounds or partition:
            yield from records  # no cursor window, or one per partition: checkpointed when it closes
            return
        # Read for a substream (a parent copy): every 100 parent records, each a partition of the substream, whose
        # states hold this position.
        every = 100 if getattr(_READING_PARENT, "router", None) else CHECKPOINT_RECORDS
        field, last, count, since = self.cursor.cursor_field.cursor_field_key, "", 0, time.monotonic()
        for record in records:
            yield record
            value = _cursor_value(record, field)
            if value is None:
                continue
            if value < last:  # out of order: a checkpoint could skip what comes later
                self._out_of_order(field)
                yield from records
                return
            last, count = value, count + 1
            if count >= every or time.monotonic() - since >= CHECKPOINT_SECONDS:
                self._checkpoint(window, last)
                count, since = 0, time.monotonic()

    def _checkpoint(self, window: Any, upto: str) -> None:
        """The cursor's own state, moved to `upto` within the window: as if a window ending there had closed. The
        CDK's cursor keeps the low-water mark of what is read, so windows read in parallel stay exact."""
        part = _ReadUpTo(self.name, StreamSlice(partition=window.partition, cursor_slice={**window.cursor_slice, "end_time": upto}))
        field = self.cursor.cursor_field.cursor_field_key
        self.cursor.observe(Record(data={field: upto}, stream_name=self.name, associated_slice=part.to_slice()))
        self.cursor.close_partition(part)

    def _klass_window(self, retriever: Retriever, schema: Mapping[str, Any], window: Any) -> Iterable[Any]:
        """A klass's search window (kobjects: a partition per klass under one cursor, which the CDK moves only once
        every klass is read). Checkpointed by what each klass's windows have read: the state's `search.klasses`,
        {klass: [[from, to], ...]}, ranges of `updatedAt` read whole. A resumed window starts where its range was read
        up to, a window read whole is skipped; the stream's cursor stays where the sync began."""
        klass, field = window.partition["klass"], self.cursor.cursor_field.cursor_field_key
        start = kustomer_timestamp(to_utc(window.cursor_slice["start_time"]))
        begin = self._unread_from(klass, start, kustomer_timestamp(to_utc(window.cursor_slice["end_time"])))
        if begin is None:
            return  # read whole by the attempt this one resumes
        if begin != start:
            window = StreamSlice(partition=window.partition, cursor_slice={**window.cursor_slice, "start_time": begin},
                                 extra_fields=window.extra_fields)
        key, last = (klass, begin), ""
        for record in retriever.read_records(schema, window):
            yield record
            value = _cursor_value(record, field)
            if last is not None and value is not None:
                if value < last:  # out of order: what was read so far stands, the rest counts once read whole
                    self._out_of_order(field)
                    last = None
                else:
                    last = self._reading[key] = value
            if self._due(1):
                yield from self._search_state()
        with self._lock:
            self._reading.pop(key, None)
            if not _refused(retriever):
                self._covered.setdefault(klass, []).append([begin, kustomer_timestamp(to_utc(window.cursor_slice["end_time"]))])

    def _unread_from(self, klass: str, start: str, end: str) -> Optional[str]:
        """Where a klass's window [start, end] is not read yet (the ranges the resumed state holds), or None."""
        with self._lock:
            if self._covered is None:
                resumed = ((self.config.get("search_resume") or {}).get(self.key) or {}).get("klasses") or {}
                self._covered = {k: [[str(a), str(b)] for a, b in v] for k, v in resumed.items() if isinstance(v, list)}
            ranges = list(self._covered.get(klass, ()))
        at, moved = start, True
        while moved:
            moved = False
            for low, high in ranges:
                if low <= at < high:  # one form, so in time order as strings
                    at, moved = high, True
        return None if at >= end else at

    def _search_state(self) -> Iterable[AirbyteMessage]:
        """kobjects' state: the cursor where the sync began, with what each klass's windows have read."""
        state = self._cursor_state()
        if state is None:
            return
        field = self.cursor.cursor_field.cursor_field_key
        if "state" not in state:  # a first sync, searched from `start_date`
            if not self.config.get("start_datetime"):
                return
            state["state"] = {field: kustomer_timestamp(to_utc(self.config["start_datetime"]))}
        with self._lock:
            ranges = {klass: list(read) for klass, read in (self._covered or {}).items()}
            for (klass, begin), last in self._reading.items():
                ranges.setdefault(klass, []).append([begin, last])
        yield _state_message(self.name, {**state, "search": {"v": 1, "klasses": {k: _merged(v) for k, v in ranges.items()}}})

    def _due(self, count: int) -> bool:
        """Whether the stream's state is due, `count` more records read (CHECKPOINT_RECORDS, CHECKPOINT_SECONDS)."""
        with self._lock:
            self._unsaved += count
            if self._unsaved < CHECKPOINT_RECORDS and time.monotonic() - self._saved_at < CHECKPOINT_SECONDS:
                return False
            self._unsaved, self._saved_at = 0, time.monotonic()
            return True

    def _substream_checkpoints(self, records: Iterable[Any]) -> Iterable[Any]:
        """A partition's records (one conversation's), then every CHECKPOINT_RECORDS records of the stream (or
        CHECKPOINT_SECONDS) its state: the CDK's per-partition cursor saves it at most every 10 minutes. That state
        holds the parent's position up to which every partition is read (the cursor's low-water mark, kept as
        partitions close), the parent's list position included (Substream): a resume reads on from there."""
        count = 0
        for record in records:
            count += 1
            yield record
        if not self._due(count):
            return
        state = self._cursor_state()
        if state and state.get("use_global_cursor") and state.get("parent_state"):
            yield _state_message(self.name, state)

    def _cursor_state(self) -> Optional[dict]:
        """A copy of the stream's per-partition cursor's state, read from a worker: a global cursor's state
        (global_substream_cursor) reads no dict the main thread changes. None for a cursor per partition, whose state
        is saved as the CDK saves it."""
        try:
            return copy.deepcopy(self.cursor.state) if self.cursor is not None else None
        except RuntimeError:
            return None

    def _out_of_order(self, field: str) -> None:
        self.warn_once("order", f"{self.name}: Kustomer returned records out of {field} order; this sync checkpoints "
                       "the stream only at the end of each window.")

    def resumed(self) -> Any:
        """The list position the state this sync resumes from holds (SourceKustomer's `list_resume`)."""
        return (self.config.get("list_resume") or {}).get(self.key)

    def positions(self, klass: Optional[str] = None, position: Optional[dict] = None) -> tuple[dict, list]:
        """Per klass (a stream partitioned by klass): the positions of the klasses being read, and the klasses read
        whole, this attempt's and the resumed one's. With `klass`, first records its position (None: read whole)."""
        with self._lock:
            if self._positions is None:
                resumed = self.resumed() if isinstance(self.resumed(), Mapping) else {}
                self._positions = (dict(resumed.get("klasses") or {}), set(resumed.get("done") or ()))
            klasses, done = self._positions
            if klass is not None and position is None:
                done.add(klass)
                klasses.pop(klass, None)
            elif klass is not None:
                klasses[klass] = position
            return dict(klasses), sorted(done)

    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=MOST_AHEAD, thread_name_prefix=f"pages-{self.name}")
            return self._pool

    def warn_once(self, key: str, message: str) -> None:
        with self._lock:
            first = key not in self._warned
            self._warned.add(key)
        if first:
            LOGGER.warning(message)

    def _markers(self, window: Any) -> Iterable[Record]:
        try:
            for deleted in self.deletions.read_records({}, window):
                row = getattr(deleted, "data", deleted)
                if row.get("eventVerb") == "delete" and row.get("objectType") == self.type and row.get("objectId"):
                    at = row.get("createdAt")
                    yield Record(data={"id": row["objectId"], "type": self.type, "deleted": True, "deletedAt": at,
                                       "deletedById": row.get("userId"), "updatedAt": at, "_ab_cdc_deleted_at": at},
                                 stream_name=getattr(deleted, "stream_name", ""), associated_slice=window)
        except Exception as error:  # an auxiliary feature never fails the stream
            self._skip_markers(f"the audit log failed ({_short(error)})")
            return
        handler = _error_handler(self.deletions)
        if getattr(handler, "ignored", None):  # refused or not found: its handler has warned once already
            self._skip_markers(next(iter(handler.ignored.values())), warn=False)

    def _skip_markers(self, why: str, warn: bool = True) -> None:
        with self._lock:
            first, self._markers_off = self._markers_off is None, self._markers_off or why
        if first and warn:
            LOGGER.warning(f"Deletion markers of {self.type}s are skipped for the rest of this sync: {why}. The "
                           "`deletions` stream still lists every hard delete.")


class _ReadUpTo:
    """A window read up to a cursor value, shown to the stream's cursor as a closed partition (`Partition`'s two
    methods the cursor calls)."""

    def __init__(self, stream: str, stream_slice: StreamSlice) -> None:
        self._stream, self._slice = stream, stream_slice

    def to_slice(self) -> StreamSlice:
        return self._slice

    def stream_name(self) -> str:
        return self._stream


class ListRead:
    """One slice of a list paged by page number (`page`, `pageSize`), read in page order with pages requested ahead.

    Speed: as many pages in flight as the rate budget can serve in one response time (OrgBudget.pages_ahead), at
    most `num_workers`; the budget still paces every request. Until the list's length is known (`meta.totalPages`),
    the look-ahead grows with the pages read, so a short list costs no request past its end and a long one at most 2%.

    Exact while the list changes: a page holds what is at its offset when it is served. A record added before the
    reading position pushes records onto the next page, where they are read twice and emitted once (ids of recent
    pages are kept). A record deleted before it pulls a record back onto a page already read: every VERIFY_PAGES
    pages and at the end, the audit log says whether records of the stream's type were deleted meanwhile (in an id-
    ordered list, only those already passed count); if so, the pages since the last look are read again from as many
    pages earlier as were deleted, and what was missed is emitted. Without the audit log (a missing role), one warning.

    Checkpoints: every CHECKPOINT_RECORDS records, a state with the stream's cursor at the slice's start and the
    position `list`: the next page, the first page not yet verified and since when. A resumed sync (SourceKustomer
    passes it as `list_resume`) reads on from there, from earlier if the audit log shows deletes since."""

    def __init__(self, windows: Windows, retriever: Any, schema: Mapping[str, Any], stream_slice: Any) -> None:
        self.windows, self.retriever, self.schema, self.slice = windows, retriever, schema, stream_slice
        self.size, self.budget = windows.page_size, OrgBudget.of(windows.config)
        self.bounds = getattr(stream_slice, "cursor_slice", None) or {}
        partition = dict(getattr(stream_slice, "partition", None) or {})
        # A list of one klass of a stream partitioned by klass (kobjects) keeps its position under the klass's name.
        self.klass = partition.pop("klass", None)
        self.positioned = bool(self.bounds.get("start_time")) and not any(partition.values())  # no parent_slice either
        self.last_page: Optional[int] = None  # from `meta.totalPages`
        self.ascending, self.max_id, self.furthest = True, "", 0  # whether the ids read ascend, the largest, the page
        self.counted: set[str] = set()  # the audit log's deletes already counted
        self.most = windows.config.get("num_workers") or MOST_AHEAD
        # Read as a substream's parent (a copy under the substream's name): its position goes to the substream's state
        # (Substream), not a state of its own.
        copy_for = self.positioned and windows.key != windows.name
        self.parent_of = getattr(_READING_PARENT, "router", None) if copy_for else None

    def read(self) -> Iterable[Any]:
        if self.positioned and self.klass is not None and self.klass in self.windows.positions()[1]:
            return  # read whole by the interrupted attempt this one resumes
        page, span_from, since = self._resume()
        self._tell_parent_of(page, span_from, since)
        seen: dict[str, int] = {}  # id -> page read on, since the last verified page (and the two before it)
        count, checkpoint_at, verify_in, rewinds, stale = 0, time.monotonic(), VERIFY_PAGES, 0, 0
        while page is not None:
            pages, restart = self._pages(page), None
            try:
                for number, response in pages:
                    body = _json(response)
                    data = body.get("data") if isinstance(body.get("data"), list) else []
                    fresh = number > self.furthest
                    self._learn(number, body, data)
                    # A page number Kustomer did not honour (the same records again and again) would never end.
                    stale = stale + 1 if fresh and data and all(str(r.get("id")) in seen for r in data if isinstance(r, Mapping)) else 0
                    if stale >= 3:
                        raise AirbyteTracedException(
                            message=f"Kustomer answered pages {number - 2} to {number} of {self.windows.name} with records "
                            "already read; the sync stopped rather than loop. Try again later, or report this.",
                            failure_type=FailureType.system_error)
                    for record in self.retriever.record_selector.select_records(
                            response=response, stream_state={}, records_schema=self.schema, stream_slice=self.slice):
                        key = record.get("id")
                        if key is not None and key in seen:
                            continue
                        seen[key] = number
                        count += 1
                        yield record
                    page, verify_in = number + 1, verify_in - 1
                    ended = not data or not (body.get("links") or {}).get("next") or page > (self.last_page or page)
                    if (ended or verify_in <= 0) and number > 1:  # a list of one page has no page boundary to shift
                        checked_at, deleted = time.time(), self._deleted_since(since)
                        if deleted and rewinds < 2:  # read the unverified pages again, from earlier
                            restart, rewinds = max(1, span_from - math.ceil(deleted / self.size)), rewinds + 1
                            LOGGER.info(f"{self.windows.name}: {deleted} deleted while pages {span_from}-{number} were "
                                        f"read; reading them again from page {restart}.")
                            span_from, since, verify_in = restart, checked_at, VERIFY_PAGES
                            break
                        if deleted:
                            self.windows.warn_once("churn", f"{self.windows.name}: records kept being deleted while the "
                                                   "list was read; a record may have been missed where pages shifted. A "
                                                   "full refresh (or a reset of the stream) reads it.")
                        span_from, since, verify_in, rewinds = page, checked_at, VERIFY_PAGES, 0
                        seen = {key: at for key, at in seen.items() if at >= number - 2}
                    if ended:
                        break
                    self._tell_parent_of(page, span_from, since)
                    if count >= CHECKPOINT_RECORDS or time.monotonic() - checkpoint_at >= CHECKPOINT_SECONDS:
                        count, checkpoint_at = 0, time.monotonic()
                        yield from self._state(page, span_from, since)
            finally:
                pages.close()
            page = restart
        if self.parent_of is not None:
            self.parent_of.parent_at(self.windows.name, None)  # read whole: the parent's cursor says so
        if self.klass is not None and self.positioned and not _refused(self.retriever):  # read whole: a resume skips it
            yield from self._state(None, 0, 0.0)

    def _resume(self) -> tuple[int, int, float]:
        """The first page to read, the first not verified, and since when deletes matter."""
        now = time.time()
        position = self.windows.resumed() if self.positioned else None
        if self.klass is not None and isinstance(position, Mapping):
            position = {"v": position.get("v"), **((position.get("klasses") or {}).get(self.klass) or {})}
        if not isinstance(position, Mapping) or position.get("v") != 1 or "page" not in position:
            return 1, 1, now
        try:
            page, span_from, since = int(position["page"]), int(position["from"]), to_utc(position["since"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return 1, 1, now
        deleted = self._deleted_since(since, passed_only=False)
        if deleted is None:  # unknown: a page earlier, for what up to a page of deletes pulled back
            page = max(1, page - 1)
        elif deleted:
            page = max(1, span_from - math.ceil(deleted / self.size))
        where = f"{self.windows.name}" + (f" (klass {self.klass})" if self.klass is not None else "")
        LOGGER.info(f"{where}: resuming the list at page {page} (checkpointed at page {position['page']}).")
        return page, page, now

    def _pages(self, first: int) -> Iterable[tuple[int, Any]]:
        """(page number, response) in page order, with up to `_ahead()` requests in flight."""
        pool, pending, number, done = self.windows.pool(), deque(), first, 0
        try:
            while True:
                while len(pending) < self._ahead(done) and (self.last_page is None or number <= self.last_page):
                    pending.append((number, pool.submit(self._request, number)))
                    number += 1
                if not pending:
                    return
                page, future = pending.popleft()
                yield page, future.result()
                done += 1
        finally:
            for _, future in pending:
                future.cancel()  # those already sent are answered and dropped

    def _request(self, page: int) -> Any:
        return self.retriever.requester.send_request(stream_state={}, stream_slice=self.slice,
                                                     request_params={"page": page, "pageSize": self.size})

    def _ahead(self, done: int) -> int:
        # Until the end is known, the look-ahead grows with the pages read: a request past the end costs 2% at most.
        ramp = self.most if self.last_page is not None else min(1 + done // 4, 4 + done // 50)
        return max(1, min(self.budget.pages_ahead(), self.most, ramp))

    def _learn(self, number: int, body: Mapping[str, Any], data: list) -> None:
        total = (body.get("meta") or {}).get("totalPages")
        if isinstance(total, int) and total > 0:
            self.last_page = total
        if number <= self.furthest:  # read again after a rewind
            return
        self.furthest = number
        for resource in data:
            key = str(resource.get("id", "")) if isinstance(resource, Mapping) else ""
            self.ascending = self.ascending and key > self.max_id
            self.max_id = max(self.max_id, key)

    def _deleted_since(self, since: float, passed_only: bool = True) -> Optional[int]:
        """How many records of the stream's type the audit log says were deleted since `since` (those already read,
        in an id-ordered list), or None where unknown."""
        shifts, kind = self.windows.shifts, self.windows.type
        if shifts is None or not kind:
            return None
        window = StreamSlice(partition={}, cursor_slice={"start_time": kustomer_timestamp(datetime.fromtimestamp(since - INDEX_LAG, timezone.utc)),
                                                         "end_time": kustomer_timestamp(datetime.now(timezone.utc) + timedelta(seconds=INDEX_LAG))})
        try:
            rows = [getattr(row, "data", row) for row in shifts.read_records({}, window)]
        except Exception as error:  # an auxiliary check never fails the stream
            self.windows.warn_once("shifts", f"{self.windows.name}: the list is read without checking Kustomer's audit "
                                   f"log for deletes that shift its pages ({_short(error)}); a record deleted during the "
                                   "read may make it miss another.")
            return None
        if getattr(_error_handler(shifts), "ignored", None):  # refused or not there: its handler warned once
            return None
        passed = passed_only and self.ascending
        new = [row for row in rows if row.get("eventVerb") == "delete" and row.get("objectType") == kind
               and row.get("id") not in self.counted and (not passed or str(row.get("objectId", "")) <= self.max_id)]
        self.counted.update(row.get("id") for row in new)  # the windows overlap by INDEX_LAG: each delete counts once
        return len(new)

    def _state(self, page: Optional[int], span_from: int, since: float) -> Iterable[AirbyteMessage]:
        """The state at this position (`page` None: the klass is read whole). The stream's cursor stays at the list's
        start, the form in which every version reads a state too old for search as "list from here"."""
        if not self.positioned or self.windows.cursor is None or self.parent_of is not None:
            return
        position = _position(page, span_from, since)
        if self.klass is None:
            blob = self._at(position)
        else:  # the per-klass cursor's form, with every klass's position
            klasses, done = self.windows.positions(self.klass, None if page is None else position)
            blob = {"use_global_cursor": True, "state": self._start(),
                    "list": {"v": 1, "end": self.bounds.get("end_time"), "klasses": klasses, "done": done}}
        yield _state_message(self.windows.name, blob)

    def _start(self) -> dict[str, str]:
        return {self.windows.cursor.cursor_field.cursor_field_key: kustomer_timestamp(to_utc(self.bounds["start_time"]))}

    def _at(self, position: Mapping[str, Any]) -> dict[str, Any]:
        """The stream's cursor at the list's start, with the position `list`."""
        return {**self._start(), "list": {"v": 1, **position, "end": self.bounds.get("end_time")}}

    def _tell_parent_of(self, page: int, span_from: int, since: float) -> None:
        """Read as a substream's parent: where this list would resume, for the partitions made from here on."""
        if self.parent_of is not None and self.windows.cursor is not None:
            self.parent_of.parent_at(self.windows.name, self._at(_position(page, span_from, since)))


def _position(page: Optional[int], span_from: int, since: float) -> dict[str, Any]:
    """A list's position: the next page, the first page not verified, and since when deletes matter."""
    return {"page": page, "from": span_from, "since": kustomer_timestamp(datetime.fromtimestamp(since, timezone.utc))}


def _cursor_value(record: Any, field: str) -> Optional[str]:
    """A record's cursor value in Kustomer's own form (which orders as text), or None."""
    value = record.get(field) if isinstance(record, Mapping) else None
    return value if isinstance(value, str) and len(value) == 24 and value.endswith("Z") else None


def _merged(ranges: List[list]) -> List[list]:
    """Ranges of times in Kustomer's form, those that overlap or touch (a millisecond apart) merged."""
    merged: List[list] = []
    for low, high in sorted(ranges):
        if merged and to_utc(low) <= to_utc(merged[-1][1]) + timedelta(milliseconds=1):
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


def _state_message(stream: str, blob: Mapping[str, Any]) -> AirbyteMessage:
    return AirbyteMessage(type=Type.STATE, state=AirbyteStateMessage(type=AirbyteStateType.STREAM, stream=AirbyteStreamState(
        stream_descriptor=StreamDescriptor(name=stream), stream_state=AirbyteStateBlob(blob))))


def _json(response: Any) -> Mapping[str, Any]:
    try:
        body = response.json() if response is not None else {}
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


@dataclass
class BestEffort(Retriever):
    """What `records` reads, or as much as it could, with a warning: for an auxiliary list, such as the klasses that
    name the per-klass streams, whose failure must not fail the sync. `why` says what is left out."""

    records: Retriever
    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]
    why: str = "an auxiliary list could not be read"

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[Any]:
        try:
            yield from self.records.read_records(records_schema, stream_slice)
        except Exception as error:
            LOGGER.warning(f"{self.why} ({_short(error)}).")


def _off_host(url: str, config: Mapping[str, Any]) -> bool:
    return urlsplit(url).netloc != urlsplit(str(config.get("api_url", ""))).netloc


def _error_handler(retriever: Any) -> Any:
    return getattr(getattr(retriever, "requester", None), "error_handler", None)


def _refused(retriever: Any) -> bool:
    return bool(getattr(_error_handler(retriever), "refused", False))


def _short(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return message if len(message) <= 300 else message[:300] + "..."


class DeclaredColumns(TypeTransformer):
    """Keeps each record to the columns its stream's schema declares, as the Airbyte platform would, without losing
    what it would drop: any other top-level field goes into `otherAttributes`, so a field Kustomer adds tomorrow is
    still in the warehouse. `custom_<name>` columns the schema does not declare are left out: `custom` has them all."""

    OTHER = "otherAttributes"

    def __init__(self, config: Any = None, parameters: Any = None, **kwargs: Any) -> None:
        super().__init__(TransformConfig.NoTransform)

    def transform(self, record: dict[str, Any], schema: Mapping[str, Any]) -> None:
        declared = schema.get("properties")
        if not declared or record.keys() <= declared.keys():  # the usual case, decided in C
            return
        other, custom = None, record.get("custom") if isinstance(record.get("custom"), dict) else {}
        for key in [key for key in record if key not in declared]:
            value = record.pop(key)
            if value is not None and not (key.startswith("custom_") and key[7:] in custom):  # a copy of custom's
                other = other or {}
                other[key] = value
        if other:
            record[self.OTHER] = {**(record.get(self.OTHER) or {}), **other}


@dataclass
class OptionalSchema(SchemaLoader):
    """The schema `loader` gives, or none if it fails, with one warning: typed columns for custom attributes are a
    convenience, never a reason for a stream to fail (its attributes stay in `custom`)."""

    loader: SchemaLoader
    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._name = parameters.get("name", "?")

    def get_json_schema(self) -> Mapping[str, Any]:
        try:
            return self.loader.get_json_schema()
        except Exception as error:
            LOGGER.warning(f"Stream {self._name}: custom attributes are not typed, only kept in `custom`: reading "
                           f"their metadata failed ({_short(error)}).")
            return {"type": "object", "properties": {}}


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


class OrgBudget:
    """Keeps the sync within its share of Kustomer's rate limits.

    Kustomer gives an org one budget a minute, shared by its agents and every API key. Responses carry the limit and
    what is left (`x-ratelimit-limit`, `-remaining`); when it refills (`x-ratelimit-reset`, epoch seconds or seconds
    from now) was never seen on a live response, and may come on a 429 only. Two rules keep the sync to its share,
    `max_api_usage_percent` of the limit:

    - The agents' reserve: while no more than (100 - share)% of the limit is left, whoever used it, requests pause
      until the refill: the reset the API gave, or else the latest the current minute can end (a refill seen in
      `remaining` ends the pause early). Requests in flight count as used.
    - Where responses never say when their window ends, also the sync's own requests: at most its share over a
      sliding minute (plus the slowest recent request), which bounds every fixed minute Kustomer may count in, even
      when the refill of `remaining` goes unseen.

    Searches have their own limit of 100 a minute per key, of which the sync takes the same share. A 429 pauses every
    request (only searches, if the org had budget left) until the reset, or for a minute.
    """

    SEARCH_LIMIT, WINDOW = 100, 60.0
    _shared: dict[tuple[str, float], "OrgBudget"] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "OrgBudget":
        """The one budget of the org `config` reads, shared by every requester of the process."""
        key = (str(config["api_url"]), float(config.get("max_api_usage_percent") or 50))
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(*key)
            return cls._shared[key]

    @classmethod
    def forget(cls) -> None:
        with cls._shared_lock:
            cls._shared.clear()

    def __init__(self, api_url: str, usage_percent: float, clock=None, sleep=None) -> None:
        self._share = min(max(float(usage_percent), 1.0), 100.0) / 100
        self._clock = clock or (lambda: time.time())
        self._sleep = sleep or (lambda seconds: time.sleep(seconds))  # looked up at call time: tests replace it
        self._lock = threading.Lock()
        self._limit = self._remaining = None  # the org's, as the last responses said (remaining: minus ours since)
        self._seen_remaining = None  # the lowest `remaining` a response gave in the current window
        self._reset_at = None  # the current window's end, where responses say it
        self._resets_given = False  # whether responses other than 429s say it
        self._window_end = None  # where they do not: the latest the current window can end
        self._sent: deque[float] = deque()  # when our requests went out, over the last window
        self._pending: dict[int, float] = {}  # requests in flight: id -> when sent
        self._most_in_flight = 0  # answers can arrive out of order by up to this many requests
        self._durations: deque[float] = deque(maxlen=50)  # how long recent requests took
        self._searches: deque[float] = deque()
        self._paused_until = self._search_paused_until = 0.0
        self._announced_until = 0.0
        self._window = self.WINDOW  # the org limit's window: Kustomer's is a minute, learned if shorter
        self._refilled_at: Optional[float] = None  # when `remaining` was last seen refilled
        self._gaps: deque[float] = deque(maxlen=2)  # the last two windows' lengths, as seen

    def pages_ahead(self) -> int:
        """Requests in flight that keep the sync at its share of the rate limit: the share a second times a
        response's time (the median of the recent ones), plus one."""
        with self._lock:
            durations, limit = sorted(self._durations), self._limit or 2000  # no headers: Kustomer's largest plan
        if not durations:
            return 1
        return math.ceil(limit * self._share / self._window * durations[len(durations) // 2]) + 1

    def acquire_call(self, request: Any) -> None:
        search = request.method == "POST" and request.url.split("?")[0].endswith("/search")
        while True:
            with self._lock:
                now = self._clock()
                wait, why = self._wait(now, search)
                if wait <= 0:
                    if self._remaining is not None:
                        self._remaining -= 1  # until a response tells
                    self._sent.append(now)
                    self._pending[id(request)] = now
                    self._most_in_flight = max(self._most_in_flight, len(self._pending))
                    if search:
                        self._searches.append(now)
                    return
                if now + wait > self._announced_until + 1:  # once per pause, whichever thread meets it first
                    self._announced_until = now + wait
                    LOGGER.info(f"Kustomer rate limit: pausing requests for {wait:.0f} s ({why}).")
            self._sleep(min(wait, 1.0))  # then look again: a response may have shown the refill

    def _wait(self, now: float, search: bool) -> tuple[float, str]:
        """Seconds to wait before the next request, and why."""
        if self._paused_until > now:
            return self._paused_until - now, "Kustomer answered 429 Too Many Requests"
        margin = max(self._durations, default=0.0)  # a request counts where it is served, up to this much later
        while self._sent and self._sent[0] <= now - self._window - margin:
            self._sent.popleft()
        if self._pending and min(self._pending.values()) < now - 600:  # failed without a response
            self._pending = {key: at for key, at in self._pending.items() if at >= now - 600}
        if self._limit:
            share = max(1, int(self._limit * self._share))
            if not self._resets_given and len(self._sent) >= share:
                why = f"{len(self._sent)} requests in the last {self._window:.0f} s, the sync's share is {share}"
                return self._sent[0] + self._window + margin - now, why
            ends = self._reset_at if self._resets_given else self._window_end
            ends = ends if ends is not None and ends > now else None
            reserve = self._limit * (1 - self._share)
            if ends is not None and self._remaining is not None and self._remaining <= reserve:
                kept = f"{100 - self._share * 100:.0f}% kept for agents" if reserve else "none left"
                return ends - now, f"{self._remaining} of the org's {self._limit} requests left, {kept}"
        if search:
            if self._search_paused_until > now:
                return self._search_paused_until - now, "Kustomer limits searches to 100 a minute"
            while self._searches and self._searches[0] <= now - self.WINDOW - margin:
                self._searches.popleft()
            if len(self._searches) >= max(1, int(self.SEARCH_LIMIT * self._share)):
                return self._searches[0] + self.WINDOW + margin - now, f"{len(self._searches)} searches in the last minute"
        return 0.0, ""

    @property
    def window(self) -> float:
        """Seconds over which the org's limit counts (a minute, unless responses showed a shorter window)."""
        return self._window

    def _learn_window(self, gap: float, exact: bool = False) -> None:
        """A window shorter than a minute: from two reset headers in a row (`exact`), else once two refills in a row
        agree. A gap that spans idle windows is longer, so only a shorter window is ever learned."""
        self._gaps.append(gap)
        shortest = gap if exact else min(self._gaps)
        if (exact or len(self._gaps) == 2 and max(self._gaps) <= shortest * 1.2) and 1 <= round(shortest) < self._window:
            self._window = float(round(shortest))
            LOGGER.info(f"Kustomer's rate limit counts over {self._window:.0f} s windows here, not a minute.")

    def update_from_response(self, request: Any, response: Any) -> None:
        parse_once(response)
        headers = getattr(response, "headers", None) or {}
        status = getattr(response, "status_code", None)
        with self._lock:
            now = self._clock()
            sent_at = self._pending.pop(id(request), None)
            if sent_at is not None:
                self._durations.append(now - sent_at)
            reset = reset_at(headers.get("x-ratelimit-reset"), now)
            try:
                limit, remaining = int(headers["x-ratelimit-limit"]), int(headers["x-ratelimit-remaining"])
            except (KeyError, ValueError):
                limit = remaining = None
            if reset is not None and (self._reset_at is None or reset > self._reset_at + 0.5):  # a new window
                if self._reset_at is not None and status != 429:
                    self._learn_window(reset - self._reset_at, exact=True)
                self._reset_at, self._seen_remaining = reset, None
            self._resets_given |= reset is not None and status != 429
            if limit is not None and status != 429:
                # Without a reset header, a refill shows as `remaining` going up by more than reordering explains.
                refilled = (reset is None and self._seen_remaining is not None
                            and remaining > self._seen_remaining + self._most_in_flight + 1)
                if refilled:
                    if self._refilled_at is not None:
                        self._learn_window(now - self._refilled_at)
                    self._refilled_at = now
                if reset is None and (refilled or self._window_end is None or now >= self._window_end):
                    self._window_end = now + self._window  # the current window began by now, so it ends by then
                if refilled or self._seen_remaining is None:
                    self._seen_remaining, self._remaining = remaining, remaining - len(self._pending)
                else:  # within a window only others' use lowers what is left; requests in flight already did
                    self._seen_remaining = min(self._seen_remaining, remaining)
                    self._remaining = min(self._remaining, remaining)
                self._limit = limit
            if status == 429:
                ends = self._window_end if self._window_end is not None and self._window_end > now else None
                until = reset if reset is not None else (ends or now + self._window)
                if remaining:  # the org has budget left, so it was the search limit
                    self._search_paused_until = max(until, now + 1)
                else:
                    self._paused_until = max(until, now + 1)
                    self._remaining = 0


class Backoff(BackoffStrategy):
    """Waits before a retry: exponential with jitter for faults; for a 429 the budget above does the waiting."""

    def backoff_time(self, response_or_exception: Any, attempt_count: int) -> float:
        if getattr(response_or_exception, "status_code", None) == 429:
            return 0.1
        return min(60.0, 2.0 ** max(attempt_count - 1, 0)) * random.uniform(0.5, 1.0)


# ---- Substreams read per conversation (conversation times, events and forwards) ------------------------------------


@dataclass
class Substream(SubstreamPartitionRouter):
    """The partitions of a stream read per parent record (a conversation), which its stream can stop (SkipWhenRefused:
    no more parent records are read, and the parent state it reports is the one it started with, so the stream's
    state stays where it was).

    The parent state it reports for each partition is what the substream's state holds once every partition made up
    to it is read (the CDK's per-partition cursor keeps that low-water mark). A parent read by search moves its
    cursor every page (Windows); a parent read from its list has no cursor to move until its end, so its list
    position (ListRead, which finds this router in `_READING_PARENT`) stands for it: `{"updatedAt": <the list's
    start>, "list": {...}}`, the form of the parent stream's own list checkpoints. SourceKustomer hands it back to
    the parent's list, under the substream's name, on resume."""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._stopped = False
        self._initial = copy.deepcopy(super().get_stream_state())  # the parents' states the sync was given
        self._positions: dict[str, Mapping[str, Any]] = {}  # parent stream -> its list position, while it is read

    def stop(self) -> None:
        self._stopped = True

    def parent_at(self, parent: str, position: Optional[Mapping[str, Any]]) -> None:
        if position is None:
            self._positions.pop(parent, None)
        else:
            self._positions[parent] = position

    def stream_slices(self) -> Iterable[StreamSlice]:
        _READING_PARENT.router = self
        try:
            for stream_slice in super().stream_slices():
                if self._stopped:
                    return
                yield stream_slice
        finally:
            if getattr(_READING_PARENT, "router", None) is self:
                _READING_PARENT.router = None

    def get_stream_state(self) -> Optional[Mapping[str, Any]]:
        if self._stopped:
            return copy.deepcopy(self._initial)
        return {**(super().get_stream_state() or {}), **copy.deepcopy(self._positions)}


@dataclass
class SkipWhenRefused(Windows):
    """Windows for a substream whose requests need a role of their own besides its parent's (conversation events:
    event.read, forwards: draft.read). Once Kustomer refuses one of them (401/403: KustomerErrors warns once), the
    stream's other partitions are skipped without a request and its parent is read no further (`partition_router`, a
    Substream), so the stream keeps the state it started with: granted the role, the next sync reads what this one
    could not. Otherwise a refused stream would make one refused request per conversation, out of the org's budget."""

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[Any]:
        if not _refused(self.records):
            yield from super().read_records(records_schema, stream_slice)
        if _refused(self.records) and isinstance(self.partition_router, Substream):
            self.partition_router.stop()
