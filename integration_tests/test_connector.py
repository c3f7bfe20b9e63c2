"""The real `source-kustomer` command (spec, check, discover, read) against our fake Kustomer API."""

import pytest

from integration_tests import cli
from integration_tests.expected import expected_ids, klass_stream
from integration_tests.fake_kustomer import WRONG_REGION_KEY

STREAMS = {  # one GET list each, read whole
    "customers", "conversations", "messages", "notes", "users", "teams", "tags", "brands", "shortcuts",
    "companies", "klasses", "kobjects", "queues", "satisfaction_surveys", "business_schedules",
}
DERIVED = {"satisfaction_responses", "conversation_times", "audit_logs", "deletions",  # see test_custom_data.py
           "conversation_events", "conversation_forwards",  # and test_conversation_activity.py
           "work_sessions", "work_items", "routing_statuses", "slas", "sla_versions", "business_schedule_holidays",
           "custom_attribute_metadata", "kb_articles", "kb_categories", "snoozes", "message_attachments"}  # support streams
FULL_REFRESH_ONLY = {"slas", "sla_versions"}  # no update time to ask by
TYPED = {"customers", "conversations", "messages", "companies"}  # read their custom-attribute metadata too


def klass_streams(dataset) -> dict[str, str]:
    return {klass_stream(name): name for name in dataset.kobjects}


@pytest.fixture(scope="module")
def catalog(fake):
    config = {"organization": "acme", "api_key": "test-api-key", "base_url": fake.url}
    return cli.run("discover", config).of_type("CATALOG")[0]


@pytest.fixture(scope="module")
def full_read(fake, catalog):
    fake.requests_log.clear()
    config = {"organization": "acme", "api_key": "test-api-key", "base_url": fake.url}
    run = cli.run("read", config, cli.configured_catalog(catalog))
    return run, list(fake.requests_log)


def all_expected(dataset) -> dict[str, list[str]]:
    return {stream: expected_ids(dataset, stream) for stream in STREAMS | DERIVED | klass_streams(dataset).keys()}


def test_spec_lists_the_fields_in_order():
    spec = cli.run("spec").of_type("SPEC")[0]["connectionSpecification"]
    properties = spec["properties"]
    assert sorted(properties, key=lambda name: properties[name]["order"]) == [
        "organization", "api_key", "start_date", "max_api_usage_percent", "base_url", "lookback_window_minutes",
        "num_workers"
    ]
    assert properties["max_api_usage_percent"].items() >= {"minimum": 1, "maximum": 100, "default": 50}.items()
    assert spec["required"] == ["api_key"]  # no organization: the shared US host, as the archived connector
    assert properties["api_key"]["airbyte_secret"] is True
    assert all(properties[name]["title"] and properties[name]["description"] for name in properties)


def test_check_succeeds_with_a_good_key(config):
    run = cli.run("check", config)
    assert run.of_type("CONNECTION_STATUS") == [{"status": "SUCCEEDED"}]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"api_key": "revoked"}, "rejected the API key"),
        ({"api_key": WRONG_REGION_KEY}, "Auth token associated with pod prod2"),
        ({"base_url": "http://127.0.0.1:1"}, "Could not connect to 127.0.0.1:1"),
        ({"organization": "acme corp"}, "`organization` field 'acme corp' is not a Kustomer organization"),
        ({"organization": ""}, "`organization` field is empty"),
        ({"base_url": "http://10.1.2.3:8080"}, "`base_url` field must start with https://"),
        ({"start_date": "last week"}, "`start_date` field 'last week' is not an ISO 8601 date"),
    ],
)
def test_check_fails_with_a_message_that_says_what_to_fix(config, change, words):
    run = cli.run("check", {**config, **change})
    [status] = run.of_type("CONNECTION_STATUS")
    assert status["status"] == "FAILED" and words in status["message"]
    assert run.returncode == 0
    assert "Traceback" not in run.stdout + run.stderr


def test_check_without_a_required_field_names_it(config):
    run = cli.run("check", {k: v for k, v in config.items() if k != "api_key"})
    [status] = run.of_type("CONNECTION_STATUS")
    assert status["status"] == "FAILED" and "api_key" in status["message"]


@pytest.mark.parametrize("command", ["discover", "read"])
def test_bad_config_stops_other_commands_with_a_config_error_and_no_traceback(config, command):
    catalog = {"streams": []} if command == "read" else None
    run = cli.run(command, {**config, "organization": "https://evil.com/acme"}, catalog)
    [trace] = run.of_type("TRACE")
    assert trace["error"]["failure_type"] == "config_error"
    assert "`organization`" in trace["error"]["message"]
    assert run.returncode == 1 and not run.records()
    assert "Traceback" not in run.stdout + run.stderr


def test_discover_offers_every_stream_with_a_schema_and_id_key(fake, catalog):
    assert {stream["name"] for stream in catalog["streams"]} == STREAMS | DERIVED | klass_streams(fake.dataset).keys()
    cursors = {"audit_logs": "createdAt", "deletions": "createdAt", "conversation_times": "createdAt",
               "conversation_events": "publishedAt", "message_attachments": "messageUpdatedAt"}
    for stream in catalog["streams"]:
        schema = stream["json_schema"]
        assert stream["source_defined_primary_key"] == [["id"]]
        if stream["name"] in FULL_REFRESH_ONLY:
            assert stream["supported_sync_modes"] == ["full_refresh"] and "id" in schema["properties"]
            continue
        assert stream["supported_sync_modes"] == ["full_refresh", "incremental"]
        cursor = cursors.get(stream["name"], "updatedAt")
        assert stream["source_defined_cursor"] and stream["default_cursor_field"] == [cursor]
        assert {"id", cursor} <= schema["properties"].keys()
        if stream["name"] not in DERIVED:
            assert {"type", "relationships", "orgId"} <= schema["properties"].keys()
            assert schema.get("additionalProperties", True) is True  # merged schemas (typed ones) leave it out
        assert all("null" in prop.get("type", ["null"]) for prop in schema["properties"].values())


def test_read_emits_every_record_of_every_stream_exactly_once(fake, full_read):
    run, _ = full_read
    got = {stream: [r["id"] for r in records] for stream, records in run.records_by_stream().items()}
    expected = all_expected(fake.dataset)
    assert set(got) == {stream for stream, ids in expected.items() if ids}
    for stream in got:
        assert len(got[stream]) == len(expected[stream]), stream
        assert sorted(got[stream]) == sorted(expected[stream]), stream
    statuses = {(s["stream_descriptor"]["name"], s["status"]) for s in (t["stream_status"] for t in run.of_type("TRACE") if t["type"] == "STREAM_STATUS")}
    assert {(stream, "COMPLETE") for stream in STREAMS} <= statuses
    assert run.returncode == 0


def test_records_are_flat_rows_with_foreign_keys(fake, full_read):
    run, _ = full_read
    source = {r["id"]: r for r in fake.dataset.resources["conversations"]}
    for row in run.records("conversations"):
        resource = source[row["id"]]
        assert row["type"] == "conversation" and "attributes" not in row
        for name, value in resource["attributes"].items():
            assert row.get(name) == value  # the CDK's serializer leaves out top-level nulls
        assert row["relationships"] == resource["relationships"]
        for name, relationship in resource["relationships"].items():
            if isinstance(relationship.get("data"), dict):
                assert row[f"{name}Id"] == relationship["data"]["id"]
    kobjects = run.records("kobjects")
    klass_of = {r["id"]: name for name, records in fake.dataset.kobjects.items() for r in records}
    assert all(row["klassName"] == klass_of[row["id"]] for row in kobjects)


def test_read_uses_the_largest_page_sizes_and_no_extra_requests(fake, catalog):
    fake.requests_log.clear()
    config = {"organization": "acme", "api_key": "test-api-key", "base_url": fake.url}
    cli.run("read", config, cli.configured_catalog(catalog, STREAMS))
    log = list(fake.requests_log)
    sizes = {}
    for entry in log:
        assert entry["authorized"]
        resource = entry["path"].removeprefix("/v1/").split("/")[0]
        sizes.setdefault(resource, set()).add(entry["query"].get("pageSize"))
    assert sizes["users"] == {"500"} and sizes["teams"] == {"500"}
    assert sizes["customers"] == sizes["messages"] == sizes["klasses"] == {"100"}
    expected = all_expected(fake.dataset)
    pages = sum(-(-len(expected[s]) // (500 if s in ("users", "teams") else 100)) or 1 for s in STREAMS - {"kobjects"})
    pages += sum(-(-len(records) // 100) or 1 for records in fake.dataset.kobjects.values())
    # Beyond the pages: the klasses list that names the kobjects_<klass> streams, and each typed stream's metadata.
    assert sum(e["path"].startswith("/v1/metadata/") for e in log) == len(TYPED)
    pages += 1 + len(TYPED)
    # The lists with hard deletes look once for deletes that shifted their pages, at the end (test_checkpoints.py).
    shifts = [e for e in log if e["path"] == "/v1/audit-logs"]
    assert {e["query"]["filter[objectType]"] for e in shifts} <= {"customer", "conversation", "message"} and len(shifts) <= 3
    # kobjects lists the klasses itself; the CDK's parent-stream cache saves that page unless both run at once. A list
    # that does not say how many pages it has may be asked for a page past its end (the look-ahead), rarely locally.
    assert pages <= len(log) - len(shifts) <= pages + 1 + 2


def test_start_date_limits_time_bound_streams(fake, config, catalog):
    start = "2025-01-01"
    run = cli.run("read", {**config, "start_date": start}, cli.configured_catalog(catalog, ["customers", "users"]))
    expected = [r["id"] for r in fake.dataset.resources["customers"] if r["attributes"]["updatedAt"] >= start]
    assert 0 < len(expected) < len(fake.dataset.resources["customers"])
    assert sorted(r["id"] for r in run.records("customers")) == sorted(expected)
    assert len(run.records("users")) == len(fake.dataset.resources["users"])


def test_a_wrong_key_fails_the_read_with_a_config_error_and_never_leaks_the_key(config, catalog):
    run = cli.run("read", {**config, "api_key": "expired-key-0123456789"}, cli.configured_catalog(catalog, ["tags"]))
    errors = [t["error"] for t in run.of_type("TRACE") if t["type"] == "ERROR"]
    assert errors and all(e["failure_type"] == "config_error" for e in errors)
    assert any("rejected the API key" in e["message"] for e in errors)
    assert "expired-key-0123456789" not in run.stdout + run.stderr
    assert not run.records()


def test_read_reports_each_streams_count_and_statuses(fake, full_read):
    run, _ = full_read
    logs = [m["message"] for m in run.of_type("LOG")]
    expected = all_expected(fake.dataset)
    for stream in STREAMS:  # the CDK's count at each stream's end
        assert f"Read {len(expected[stream])} records from {stream} stream" in logs, stream
    statuses = [t["stream_status"] for t in run.of_type("TRACE") if t["type"] == "STREAM_STATUS"]
    for stream in STREAMS:
        assert [s["status"] for s in statuses if s["stream_descriptor"]["name"] == stream][:1] == ["STARTED"]
