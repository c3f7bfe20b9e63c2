"""Stream schemas against what Kustomer really sends, and against what the platform and acceptance tests demand.

The platform drops every top-level record field a stream's schema does not declare, and acceptance tests validate
records with Draft 7, strict integers and a date-time format check. So each Kustomer resource in `real_payloads/`
(recorded or documented bodies, see its README), flattened as the connector flattens it, must validate against its
stream's schema and have every top-level field declared.
"""

import copy
import json
import re
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
from jsonschema import Draft7Validator, FormatChecker

from source_kustomer.components.records import CustomAttributeMetadataExtractor, IncludedRecordExtractor, flatten
from source_kustomer.source import load_manifest

SCHEMAS = load_manifest()["schemas"]  # stream name -> its schema, from the manifest
PAYLOADS = Path(__file__).parent / "real_payloads"
# Where most were copied from, beside the repository (../shared/reference/real-payloads); absent on a clean checkout.
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "real-payloads"

# Each vendored body -> the stream whose records its resources are (kobjects_<klass> streams share the kobjects schema).
STREAM_OF = {
    "audit_logs_list.doc.json": "audit_logs",
    "brands_list.doc.json": "brands",
    "companies_list.doc.json": "companies",
    "conversation_events_list.doc.json": "conversation_events",
    "conversation_forwards_list.doc.json": "conversation_forwards",
    "conversation_get.doc.json": "conversations",
    "conversations_list.doc.json": "conversations",
    "customer_conversations_list.doc.json": "conversations",
    "conversation_messages_list.doc.json": "messages",
    "messages_list.doc.json": "messages",
    "conversation_notes_list.doc.json": "notes",
    "notes_list.doc.json": "notes",
    "conversation_times_by_conversation.doc.json": "conversation_times",
    "conversation_times_by_ids.doc.json": "conversation_times",
    "customer_create.live.json": "customers",
    "customer_get.doc.json": "customers",
    "customer_get_by_external_id.live.json": "customers",
    "customer_update_put.live.json": "customers",
    "customers_list.doc.json": "customers",
    "search_customers.doc.json": "customers",
    "search_archive.doc.json": "customers",
    "customer_kobjects_list.doc.json": "kobjects",
    "kobject_by_external_id.doc.json": "kobjects",
    "kobject_create_for_customer.live.json": "kobjects",
    "kobjects_list.doc.json": "kobjects",
    "kobjects_list_orders_2017.live.json": "kobjects",
    "klasses_list.doc.json": "klasses",
    "satisfaction_list.doc.json": "satisfaction_surveys",
    "schedules_list.doc.json": "business_schedules",
    "sla_get_with_versions.doc.json": "slas",
    "schedule_get_by_id_include_holidays.doc.json": "business_schedules",
    "metadata_customer.doc.json": "custom_attribute_metadata",
    "conversation_attachments_list.doc.json": "message_attachments",
    "message_attachment_get.doc.json": "message_attachments",
    "attachment_get_by_id.doc.json": "message_attachments",
}
# Bodies whose `included` resources are another stream's records (read with `include=` or `versions=`).
INCLUDED_OF = {"sla_get_with_versions.doc.json": "sla_versions", "schedule_get_by_id_include_holidays.doc.json": "business_schedule_holidays"}

# Mistakes in Kustomer's hand-written examples (never in recordings), corrected in memory before checking.
OPENAPI_FRAGMENT_KEYS = {"type", "format", "example", "description"}
FILES_WITH_OPENAPI_FRAGMENTS = {"kobjects_list.doc.json", "kobject_by_external_id.doc.json"}
RENAMED_KEYS = {"companies_list.doc.json": {"extenalId": "externalId"}}  # Kustomer's typo in the companies example

# What the manifest adds to each record after flatten() (AddFields).
ADDED_FIELDS = {
    "kobjects": lambda record: {"klassName": record["type"].split(".", 1)[1]},
    "conversation_times": lambda record: {"conversationUpdatedAt": "2020-06-01T12:00:00.000Z"},
    # the conversation a forward was read from, where it names none
    "conversation_forwards": lambda record: {"conversationId": record.get("conversationId") or "58210c3db0f09110006b7953"},
}

OTHER_ATTRIBUTES = {
    "type": ["null", "object"],
    "additionalProperties": True,
    "description": "Top-level attributes Kustomer returned that this version of the connector does not declare as "
    "columns, so a field Kustomer adds is still in the warehouse.",
}

# As the acceptance tests check records: Draft 7, an integer is an int (not 1.0, not a bool), and a date-time must
# look like one (CAT's CustomFormatChecker pattern) and parse.
_DATE_TIME = re.compile(r"^\d{4}-\d?\d-\d?\d(\s|T)\d?\d:\d?\d:\d?\d(.\d+)?.*$")
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


StrictDraft7Validator = jsonschema.validators.extend(
    Draft7Validator,
    type_checker=Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def schema_of(stream: str) -> dict:
    return copy.deepcopy(SCHEMAS[stream])


def unwrap_openapi_fragments(value):
    """`{"type": "integer", "example": 1}` where a value belongs -> 1."""
    if isinstance(value, dict):
        if {"type", "example"} <= value.keys() <= OPENAPI_FRAGMENT_KEYS:
            return value["example"]
        return {key: unwrap_openapi_fragments(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_openapi_fragments(item) for item in value]
    return value


def resources(name: str, corrected: bool = True) -> list:
    body = json.loads((PAYLOADS / name).read_text())
    if corrected and name.endswith(".doc.json"):
        body = unwrap_openapi_fragments(body)
    data = body["data"]
    data = data if isinstance(data, list) else [data]
    if corrected:
        for resource in data:
            for old, new in RENAMED_KEYS.get(name, {}).items():
                if old in (resource.get("attributes") or {}):
                    resource["attributes"][new] = resource["attributes"].pop(old)
    return data


class Body:
    def __init__(self, body: dict):
        self.content = json.dumps(body).encode()


def records(name: str, included: bool = False) -> list:
    """The rows the connector would emit for a payload's resources (flatten() without custom columns; the metadata
    and the `included` resources through the connector's own extractors)."""
    stream = INCLUDED_OF[name] if included else STREAM_OF[name]
    if stream == "custom_attribute_metadata" or included:
        extractor = CustomAttributeMetadataExtractor() if not included else IncludedRecordExtractor({"included_type": None})
        return list(extractor.extract_records(Body(json.loads((PAYLOADS / name).read_text()))))
    rows = []
    for resource in resources(name):
        row = flatten(copy.deepcopy(resource))
        row.update(ADDED_FIELDS.get(stream, lambda _: {})(row))
        rows.append(row)
    assert rows, f"{name} holds no resource"
    return rows


def errors(schema: dict, record: dict) -> list:
    validator = StrictDraft7Validator(schema, format_checker=FORMATS)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(record)]


# --- the checker itself, so a pass below means something ---------------------------------------------------------


@pytest.mark.parametrize(
    "value, schema",
    [
        (1.0, {"type": ["null", "integer"]}),
        (True, {"type": ["null", "integer"]}),
        (4.5, {"type": ["null", "integer"]}),
        ({}, {"type": ["null", "string"]}),
        ("2024-01-01", {"type": ["null", "string"], "format": "date-time"}),
        ("yesterday", {"type": ["null", "string"], "format": "date-time"}),
        ("2024-13-45T10:00:00Z", {"type": ["null", "string"], "format": "date-time"}),
    ],
)
def test_the_checker_rejects_what_acceptance_tests_reject(value, schema):
    assert errors({"type": "object", "properties": {"x": schema}}, {"x": value})


def test_the_checker_accepts_kustomer_values():
    properties = {"n": {"type": ["null", "integer"]}, "at": {"type": ["null", "string"], "format": "date-time"}}
    schema = {"type": "object", "properties": properties}
    for at in ("2016-11-12T05:39:36.976Z", "2016-11-06T13:54:29-05:00", None):
        assert not errors(schema, {"n": 3, "at": at})


# --- the payloads -------------------------------------------------------------------------------------------------


def test_every_vendored_payload_is_mapped_to_a_stream():
    bodies = sorted(path.name for path in PAYLOADS.glob("*.json") if not path.name.startswith("error_"))  # test_replay's
    assert bodies == sorted(STREAM_OF)
    assert all(stream in SCHEMAS for stream in STREAM_OF.values())


def test_vendored_payloads_are_byte_for_byte_copies():
    if not REFERENCE.is_dir():
        pytest.skip(f"the team's reference folder {REFERENCE}, which the copies in {PAYLOADS.name}/ came from, is not "
                    "on this machine: nothing to compare them with (every other test here uses the copies)")
    copied = [name for name in sorted(STREAM_OF) if (REFERENCE / name).exists()]  # the rest: from the OpenAPI directly
    changed = [name for name in copied if (PAYLOADS / name).read_bytes() != (REFERENCE / name).read_bytes()]
    assert len(copied) > 25 and not changed, changed


def test_the_corrections_touch_only_the_examples_known_to_need_them():
    """So a correction never hides a new mismatch: each changes its own files and nothing else."""
    raw = {name: resources(name, corrected=False) for name in STREAM_OF}
    unwrapped = {name for name, data in raw.items() if unwrap_openapi_fragments(data) != data}
    assert unwrapped == FILES_WITH_OPENAPI_FRAGMENTS
    for name, renames in RENAMED_KEYS.items():
        attributes = [resource["attributes"] for resource in resources(name, corrected=False)]
        assert all(old in attrs and new not in attrs for attrs in attributes for old, new in renames.items())


@pytest.mark.parametrize("name", sorted(STREAM_OF))
def test_payload_records_validate_against_their_stream_schema(name):
    schema = schema_of(STREAM_OF[name])
    for record in records(name):
        assert not errors(schema, record), f"{name}, record {record.get('id')}: {errors(schema, record)}"


@pytest.mark.parametrize("name", sorted(STREAM_OF))
def test_payload_records_have_every_top_level_field_declared(name):
    declared = schema_of(STREAM_OF[name])["properties"].keys()
    for record in records(name):
        undeclared = sorted(record.keys() - declared)
        assert not undeclared, f"{name}, record {record.get('id')}: the platform would drop {undeclared}"


@pytest.mark.parametrize("name", sorted(INCLUDED_OF))
def test_included_records_validate_and_have_every_field_declared(name):
    schema = schema_of(INCLUDED_OF[name])
    rows = records(name, included=True)
    assert rows
    for record in rows:
        assert not errors(schema, record), f"{name}, record {record.get('id')}: {errors(schema, record)}"
        assert not sorted(record.keys() - schema["properties"].keys()), record.keys() - schema["properties"].keys()


# --- the schema files ---------------------------------------------------------------------------------------------

SCHEMA_FILES = sorted(SCHEMAS)


def schema_nodes(node: dict, path: str = "#"):
    """Every subschema of a schema (the values of `properties`, `items`, `anyOf`/`oneOf`), with its path."""
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from schema_nodes(child, f"{path}/properties/{name}")
    items = node.get("items")
    for index, child in enumerate(items if isinstance(items, list) else [items] if isinstance(items, dict) else []):
        yield from schema_nodes(child, f"{path}/items/{index}")
    for keyword in ("anyOf", "oneOf"):
        for index, child in enumerate(node.get(keyword) or []):
            yield from schema_nodes(child, f"{path}/{keyword}/{index}")


def test_there_are_schemas_to_check():
    assert set(STREAM_OF.values()) <= set(SCHEMA_FILES)


@pytest.mark.parametrize("file", SCHEMA_FILES)
def test_schema_file_is_a_valid_draft7_object_schema(file):
    schema = SCHEMAS[file]
    Draft7Validator.check_schema(schema)
    assert schema.get("type") == "object"
    assert isinstance(schema.get("properties"), dict) and schema["properties"]


@pytest.mark.parametrize("file", SCHEMA_FILES)
def test_schema_declares_id_and_other_attributes(file):
    properties = SCHEMAS[file]["properties"]
    assert "id" in properties
    assert properties.get("otherAttributes") == OTHER_ATTRIBUTES


@pytest.mark.parametrize("file", SCHEMA_FILES)
def test_schema_uses_only_what_acceptance_tests_allow(file):
    schema = SCHEMAS[file]
    for path, node in schema_nodes(schema):
        assert node.get("additionalProperties", True) is True, f"{file} {path}: additionalProperties must be true"
        assert not {"$ref", "allOf", "not"} & node.keys(), f"{file} {path}: $ref, allOf and not are not allowed"
    for name, prop in schema["properties"].items():
        types = prop.get("type")
        assert isinstance(types, list) and "null" in types, f"{file} {name}: a column must be nullable, [\"null\", T]"
