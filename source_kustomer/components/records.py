"""Kustomer's JSON:API resources as flat warehouse rows, and the columns they are kept to."""

import re
import threading
import weakref
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable, Mapping, MutableMapping, Optional

import orjson
import requests
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.utils.transform import TransformConfig, TypeTransformer

from source_kustomer.components.state import SyncPlan
from source_kustomer.components.timestamps import kustomer_timestamp, to_utc

# Custom attribute name suffix -> the Airbyte type of its column (Kustomer types custom attributes by suffix).
CUSTOM_TYPES = {"Num": "number", "Bool": "boolean", "At": "timestamp_with_timezone", "Str": "string",
                "Txt": "string", "Url": "string", "Tree": "string", "Id": "string"}
_SUFFIX = re.compile(r"(?<=[a-z0-9])(" + "|".join(CUSTOM_TYPES) + r")$")


# Each page's body, parsed once: the error handler, the list or search reader, the paginator and the extractor all
# read it, and parsing is most of a page's CPU. Kept while the response lives; read only (flatten copies).
_PARSED: "weakref.WeakKeyDictionary[Any, Mapping[str, Any]]" = weakref.WeakKeyDictionary()
_PARSED_LOCK = threading.Lock()


def page_body(response: Any) -> Mapping[str, Any]:
    """A page's JSON object, parsed with orjson (the CDK's selector would parse it with the slower json), or {}."""
    if response is None:
        return {}
    try:
        with _PARSED_LOCK:
            body = _PARSED.get(response)
    except TypeError:  # unhashable (requests-cache's responses): parsed each time
        body, response_kept = None, False
    else:
        response_kept = True
    if body is not None:
        return body
    try:
        parsed = orjson.loads(response.content)
    except (orjson.JSONDecodeError, TypeError, AttributeError):
        parsed = None
    body = parsed if isinstance(parsed, Mapping) else {}
    if response_kept:
        with _PARSED_LOCK:
            _PARSED[response] = body
    return body


def flatten(resource: Mapping[str, Any], custom_columns: bool = False) -> dict:
    """JSON:API resource -> one flat row: attributes at top level, `<relationship>Id` keys for to-one links, and
    with `custom_columns` each custom attribute also as its own column `custom_<name>` (typed by the schema)."""
    row = dict(resource.get("attributes") or {})
    # the resource's own `id`, `type`, `relationships` and `links` win over attributes
    row.update((key, value) for key, value in resource.items() if key != "attributes")
    for name, relationship in (resource.get("relationships") or {}).items():
        data = relationship.get("data") if isinstance(relationship, dict) else None
        if isinstance(data, dict) and data.get("id") is not None:
            row.setdefault(f"{name}Id", data["id"])
    if custom_columns and isinstance(row.get("custom"), dict):
        row.update((f"custom_{name}", value) for name, value in row["custom"].items())
    return row


class JsonApiRecordExtractor(RecordExtractor):
    """`data` of a JSON:API page, each resource flattened (so cursors and filters see `updatedAt` directly).

    Not `DpathExtractor` + transformations: the foreign-key names come from each record's own relationships."""

    parameters: Mapping[str, Any]  # the CDK's factory passes the fields a component's annotations name

    def __init__(self, parameters: Optional[Mapping[str, Any]] = None) -> None:
        self._custom_columns = bool((parameters or {}).get("metadata"))  # streams whose schema types them

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        data = page_body(response).get("data") or []
        for resource in data if isinstance(data, list) else [data]:
            if isinstance(resource, dict):
                yield flatten(resource, self._custom_columns)


class SatisfactionResponseExtractor(JsonApiRecordExtractor):
    """A conversation's CSAT survey (`satisfactionLevel`) as one row, for conversations that were sent one: Kustomer
    has no list of survey responses."""

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        for conversation in super().extract_records(response):
            survey = conversation.get("satisfactionLevel")
            if isinstance(survey, dict) and survey.get("status"):
                yield {**{k: v for k, v in survey.items() if k not in ("createdAt", "updatedAt")},
                       "id": conversation["id"], "conversationId": conversation["id"],
                       "customerId": conversation.get("customerId"), "satisfaction": conversation.get("satisfaction"),
                       "surveyCreatedAt": survey.get("createdAt"), "surveyUpdatedAt": survey.get("updatedAt"),
                       "createdAt": conversation.get("createdAt"), "updatedAt": conversation.get("updatedAt")}


class CustomAttributeTypesExtractor(RecordExtractor):
    """GET /v1/metadata/<resource> -> `{"fields": [{"name": "custom_<attribute>", "type": <Airbyte type>}]}`, what
    the manifest's DynamicSchemaLoader reads: the type comes from the attribute name's suffix."""

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        properties = ((page_body(response).get("data") or {}).get("attributes") or {}).get("properties") or {}
        fields = []
        for name, spec in properties.items():
            suffix = _SUFFIX.search(name)
            if suffix and not (isinstance(spec, dict) and spec.get("deletedAt")):  # deleted attributes: no column
                multi = suffix[1] == "Id" and isinstance(spec, dict) and spec.get("multi")
                fields.append({"name": f"custom_{name}", "type": "array" if multi else CUSTOM_TYPES[suffix[1]]})
        yield {"fields": fields}


@dataclass
class CursorBoundsRecordFilter(RecordFilter):
    """Keeps the records whose `cursor_field` lies within the slice's `start_time`..`end_time`, as the CDK's
    `is_client_side_incremental` filter does, but compares Kustomer's fixed-width timestamps as strings: the CDK's
    filter parses every record's timestamp twice with `strptime`, about a sixth of a sync's CPU. A slice without
    bounds (a stream read without a cursor) keeps every record.

    A stream the catalog reads in full refresh (SyncPlan.full_refresh) keeps the records changed after the sync's
    end too: its state is not used, and an overwritten table must not lose them. An incremental stream must not:
    they would move its state past changes it has not read."""

    cursor_field: str = "updatedAt"

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._open_ended = SyncPlan.of(self.config).full_refresh(parameters.get("name"))

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


class DeclaredColumnsSchemaNormalization(TypeTransformer):
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


class IncludedRecordExtractor(RecordExtractor):
    """The `included` resources of a page, of type `parameters.included_type` (SLA versions, holidays, attachments),
    flattened: Kustomer sends `included` as one object or as a list. A resource without an `id` (the documented
    attachment list) takes the last segment of its `links.self`. Attachments also carry their message's `updatedAt`
    (their cursor), conversation and customer, from the message on the same page. The stock DpathExtractor reads one
    path, and none of these links."""

    parameters: Mapping[str, Any]  # the CDK's factory passes the fields a component's annotations name

    def __init__(self, parameters: Optional[Mapping[str, Any]] = None) -> None:
        self._type = (parameters or {}).get("included_type")

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        body = page_body(response)
        included = body.get("included") or []
        data = body.get("data") if isinstance(body.get("data"), list) else [body.get("data")]
        parents = {p.get("id"): flatten(dict(p)) for p in data if isinstance(p, dict)}
        for resource in included if isinstance(included, list) else [included]:
            if not isinstance(resource, dict) or (self._type and resource.get("type") != self._type):
                continue
            row = flatten(dict(resource))
            if row.get("id") is None and isinstance(row.get("links"), dict) and row["links"].get("self"):
                row["id"] = str(row["links"]["self"]).rstrip("/").rsplit("/", 1)[-1]
            message = parents.get(row.get("messageId")) if row.get("type") == "attachment" else None
            if message is not None:
                row.update(messageUpdatedAt=message.get("updatedAt"), conversationId=message.get("conversationId"),
                           customerId=message.get("customerId"))
            yield row


class CustomAttributeMetadataExtractor(RecordExtractor):
    """GET /v1/metadata/<resource> -> a row per custom attribute: the resource, its name, display name, type,
    options and the rest of what Kustomer says of it (the response is one document, its attributes a map)."""

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        data = page_body(response).get("data") or {}
        resource = data.get("id") if isinstance(data, dict) else None
        properties = ((data.get("attributes") or {}).get("properties") or {}) if isinstance(data, dict) else {}
        for name, spec in properties.items():
            spec = spec if isinstance(spec, dict) else {}
            options = spec.get("enumeration")
            yield {**spec, "id": f"{resource}.{name}", "resource": resource, "name": name,
                   "displayName": spec.get("displayName"), "type": spec.get("type"),
                   "options": options if isinstance(options, list) else None,
                   "modifiedById": spec.get("modifiedBy") if isinstance(spec.get("modifiedBy"), str) else None}
