"""The read-output checker of integration_tests/conformance.py, on hand-built messages: for each rule, a conforming
output passes and a violating one is reported."""

import json

import pytest

from integration_tests.conformance import assert_conforms, violations

NOW = 1_750_000_000_000
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": ["null", "string"]},
        "count": {"type": ["null", "integer"]},
        "updatedAt": {"type": ["null", "string"], "format": "date-time"},
    },
}


def stream(name="s", namespace=None, primary_key=(("id",),)):
    configured = {"name": name, "json_schema": SCHEMA, "supported_sync_modes": ["full_refresh", "incremental"]}
    if namespace is not None:
        configured["namespace"] = namespace
    return {"stream": configured, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite",
            "primary_key": [list(path) for path in primary_key] if primary_key else None}


CATALOG = {"streams": [stream("s"), stream("t")]}


def record(name="s", namespace=None, emitted_at=NOW, **data):
    message = {"stream": name, "data": data if data else {"id": "1"}, "emitted_at": emitted_at}
    if namespace is not None:
        message["namespace"] = namespace
    return {"type": "RECORD", "record": message}


def state(name="s", count=1.0, namespace=None):
    descriptor = {"name": name, **({"namespace": namespace} if namespace is not None else {})}
    message = {"type": "STREAM", "stream": {"stream_descriptor": descriptor, "stream_state": {"updatedAt": "x"}}}
    if count is not None:
        message["sourceStats"] = {"recordCount": count}
    return {"type": "STATE", "state": message}


def status(value, name="s", namespace=None):
    descriptor = {"name": name, **({"namespace": namespace} if namespace is not None else {})}
    return {"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": NOW + 0.5,  # a trace's is a number
                                       "stream_status": {"stream_descriptor": descriptor, "status": value}}}


def error(message, name=None):
    trace_error = {"message": message, "failure_type": "system_error"}
    if name:
        trace_error["stream_descriptor"] = {"name": name}
    return {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": NOW, "error": trace_error}}


def good(name="s", records=None):
    """What the CDK prints for one stream: STARTED, RUNNING, records, a state counting them, COMPLETE."""
    records = records if records is not None else [record(name, id="1"), record(name, id="2")]
    running = [status("RUNNING", name)] if records else []
    return [status("STARTED", name), *running, *records, state(name, float(len(records))), status("COMPLETE", name)]


def rules(messages, catalog=CATALOG, complete=True):
    return {line.split("]")[0].lstrip("[") for line in violations(messages, catalog, complete)}


def found(messages, text, catalog=CATALOG, complete=True):
    return any(text in line for line in violations(messages, catalog, complete))


def test_a_conforming_read_passes_as_dicts_and_as_stdout_lines():
    messages = good("s") + good("t", records=[])
    assert violations(messages, CATALOG) == []
    lines = [json.dumps(m) for m in messages] + [""]
    assert violations(lines, CATALOG) == []
    assert_conforms(lines, CATALOG)


# §0, §7.1: parsing and message types
def test_a_line_that_is_not_json_or_has_no_valid_type_is_reported():
    lines = [json.dumps(m) for m in good("s") + good("t", records=[])]
    assert rules(lines + ["Starting sync..."]) == {"§0 parse"}
    assert rules(lines + ['{"type": "BANANA"}']) == {"§0 type"}
    assert rules(lines + ['{"type": "CATALOG", "catalog": {"streams": []}}']) == {"§0 type"}
    assert rules(lines + ['{"type": "LOG", "log": {"level": "INFO", "message": "ok"}}']) == set()


# §3.1, §6, §7.2: record stream, namespace, data, emitted_at
def test_a_record_of_a_stream_outside_the_catalog_is_reported():
    assert found(good("s") + good("t", records=[]) + [record("u")], "not in the configured catalog")


def test_a_record_namespace_must_equal_the_catalogs_exactly():
    catalog = {"streams": [stream("s", namespace="ns")]}
    conforming = [status("STARTED", namespace="ns"), status("RUNNING", namespace="ns"), record(namespace="ns"),
                  state(namespace="ns"), status("COMPLETE", namespace="ns")]
    assert violations(conforming, catalog) == []
    assert found([record(namespace="")] + good("s")[1:], "namespace=''", CATALOG)  # "" is not null
    assert found(conforming[:2] + [record()] + conforming[3:], "namespace=None", catalog)


def test_record_data_must_be_a_non_empty_object():
    messages = good("t", records=[])
    assert "§3.1 data" in rules(good("s", [record(id="1"), {"type": "RECORD", "record": {
        "stream": "s", "data": {}, "emitted_at": NOW}}]) + messages)
    assert "§3.1 data" in rules(good("s", [{"type": "RECORD", "record": {"stream": "s", "data": ["x"], "emitted_at": NOW}}]) + messages)


@pytest.mark.parametrize("emitted_at", [NOW + 0.5, NOW // 1000, str(NOW), None, True])
def test_record_emitted_at_must_be_integer_milliseconds(emitted_at):
    assert rules(good("s", [record(emitted_at=emitted_at)]) + good("t", records=[])) == {"§6 emitted_at"}


# §1, §7.3: state type, descriptor, sourceStats.recordCount per stream
def test_states_must_be_stream_states_with_a_descriptor_and_source_stats():
    base = good("s") + good("t", records=[])
    legacy = {"type": "STATE", "state": {"data": {"s": {}}}}
    global_ = {"type": "STATE", "state": {"type": "GLOBAL", "global": {"stream_states": []}, "sourceStats": {"recordCount": 0.0}}}
    no_descriptor = {"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_state": {}}, "sourceStats": {"recordCount": 0.0}}}
    assert rules(base + [legacy]) == {"§1 state type"}
    assert rules(base + [global_]) == {"§1 state type"}
    assert rules(base + [no_descriptor]) == {"§1 state descriptor"}
    assert rules(base + [state("u", 0.0)]) == {"§1 state descriptor"}
    assert found(good("s")[:4] + [state("s", None), status("COMPLETE")] + good("t", records=[]), "without sourceStats")


def test_record_count_must_be_a_float():
    messages = good("s")
    messages[4] = state("s", 2)
    assert found(messages + good("t", records=[]), "is not a float")


def test_record_count_counts_the_streams_records_since_its_own_previous_state():
    # s: 2 records, t: 1 record, interleaved; each state counts only its own stream since its own previous state.
    interleaved = [status("STARTED", "s"), status("STARTED", "t"), status("RUNNING", "s"), record("s"),
                   status("RUNNING", "t"), record("t"), state("t", 1.0), record("s"), state("s", 2.0),
                   state("s", 0.0), status("COMPLETE", "s"), status("COMPLETE", "t")]
    assert violations(interleaved, CATALOG) == []
    global_count = interleaved.copy()
    global_count[8] = state("s", 1.0)  # counting since the previous state of any stream
    assert found(global_count, "s: STATE recordCount 1.0 but 2 RECORDs")
    cumulative = interleaved.copy()
    cumulative[9] = state("s", 2.0)
    assert found(cumulative, "s: STATE recordCount 2.0 but 0 RECORDs")


# §1.4, §7.4: at least one state per stream, the last one after the last record
def test_every_stream_emits_a_state_after_its_last_record():
    no_state = [m for m in good("t", records=[]) if m["type"] != "STATE"]
    assert found(good("s") + no_state, "t: no STATE")
    late = good("s")
    late.insert(5, record("s", id="3"))  # after the state, before COMPLETE
    assert found(late + good("t", records=[]), "s: 1 RECORDs after the stream's last STATE")
    assert not found(late + no_state, "STATE", complete=False)  # a killed read may stop anywhere


# §2, §7.5: stream statuses
def test_each_stream_goes_started_running_complete():
    t = good("t", records=[])
    assert found(good("s")[1:] + t, "s: first status is RUNNING, not STARTED")
    assert found([m for m in good("s") if m["type"] != "TRACE"] + t, "s: no stream status")
    assert found(good("s")[:-1] + t, "s: last status is RUNNING, not COMPLETE")
    assert found(good("s")[:1] + good("s")[:-1] + [status("COMPLETE")] + t, "s: STARTED after")
    assert found(good("s") + [status("RUNNING")] + t, "s: RUNNING after COMPLETE")
    assert violations(good("s")[:-1] + t, CATALOG, complete=False) == []  # a killed read has no terminal status yet


def test_running_goes_with_records():
    assert found(good("s") + [status("STARTED", "t"), status("RUNNING", "t"), state("t", 0.0), status("COMPLETE", "t")],
                 "t: RUNNING status but no RECORD")
    assert found([m for m in good("s") if m.get("trace", {}).get("stream_status", {}).get("status") != "RUNNING"]
                 + good("t", records=[]), "s: RECORDs but no RUNNING")


def test_a_rate_limited_running_status_is_allowed_on_an_empty_stream_but_not_for_a_stream_outside_the_catalog():
    rate_limited = status("RUNNING", "t")
    rate_limited["trace"]["stream_status"]["reasons"] = [{"type": "RATE_LIMITED"}]
    empty = [status("STARTED", "t"), rate_limited, state("t", 0.0), status("COMPLETE", "t")]
    assert violations(good("s") + empty, CATALOG) == []
    rate_limited["trace"]["stream_status"]["stream_descriptor"]["name"] = "parent_of_t"
    assert found(good("s") + good("t", records=[]) + [rate_limited], "parent_of_t: RUNNING status for a stream not in")


def test_incomplete_only_with_an_error_for_that_stream():
    incomplete = good("s")[:-1] + [status("INCOMPLETE")] + good("t", records=[])
    assert found(incomplete, "s: INCOMPLETE without an ERROR")
    assert found(incomplete + [error("boom", "t")], "s: INCOMPLETE without an ERROR")
    assert violations(incomplete + [error("boom", "s")], CATALOG) == []
    assert violations(incomplete + [error("The following streams did not sync successfully: s: boom")], CATALOG) == []


def test_a_run_that_failed_before_any_stream_started_is_not_blamed_for_missing_statuses():
    assert found([], "s: no stream status")
    assert violations([error("Config error: bad key")], CATALOG) == []


def test_no_status_for_a_stream_outside_the_catalog_and_no_record_after_a_terminal_status():
    base = good("s") + good("t", records=[])
    assert found(base + [status("COMPLETE", "u")], "u: COMPLETE status for a stream not in the catalog")
    assert found(base + [record("s", id="9")], "s: RECORD after its COMPLETE status")


def test_a_trace_without_emitted_at_is_reported():
    trace = status("STARTED")
    del trace["trace"]["emitted_at"]
    assert rules([trace] + good("s")[1:] + good("t", records=[])) == {"§2 trace"}


# §3.3, §7.6: Draft 7 schema with strict integers and CAT's date-time check
@pytest.mark.parametrize("field, value", [("count", 1.0), ("count", True), ("count", "1"), ("id", 5),
                                          ("updatedAt", "2024-05-01"), ("updatedAt", "yesterday"),
                                          ("updatedAt", "2024-13-45T99:99:99Z")])
def test_records_must_validate_against_the_schema(field, value):
    messages = good("s", [record(**{"id": "1", field: value})]) + good("t", records=[])
    assert rules(messages) == {"§3.3 schema"}
    assert found(messages, f"s: {field} = ")


@pytest.mark.parametrize("field, value", [("count", 1), ("count", None), ("updatedAt", "2024-05-01T10:00:00.000Z"),
                                          ("updatedAt", "2024-05-01 10:00:00"), ("updatedAt", "2024-5-1T1:2:3+02:00")])
def test_valid_values_pass_the_schema(field, value):
    assert violations(good("s", [record(**{"id": "1", field: value})]) + good("t", records=[]), CATALOG) == []


# §3.1, §7.7: no top-level field outside properties
def test_a_top_level_field_outside_the_schemas_properties_is_reported():
    messages = good("s", [record(id="1", extra={"a": 1})]) + good("t", records=[])
    assert rules(messages) == {"§3.1 undeclared"}
    assert found(messages, "s: field 'extra' is not in the schema's properties")


# §3.1, §3.3, §7.8: primary key present, not all null, scalar
@pytest.mark.parametrize("data, words", [({"count": 1}, "primary key ['id'] missing"),
                                         ({"id": None}, "all null"),
                                         ({"id": ["a"]}, "is not scalar")])
def test_the_primary_key_must_be_present_non_null_and_scalar(data, words):
    catalog = {"streams": [{**stream("s"), "stream": {**stream("s")["stream"], "json_schema": {
        "type": "object", "properties": {"id": {}, "count": {}}}}}]}
    assert found(good("s", [record(**data)]), words, catalog)
    assert violations(good("s", [record(id="a")]), catalog) == []


def test_a_stream_without_a_primary_key_has_no_primary_key_rule():
    catalog = {"streams": [stream("s", primary_key=None)]}
    assert violations(good("s", [record(count=1)]), catalog) == []


def test_assert_conforms_lists_every_violation():
    messages = good("s", [record(id="1", extra=1, count=1.5)])
    with pytest.raises(AssertionError) as failure:
        assert_conforms(messages, CATALOG)
    text = str(failure.value)
    assert "§3.1 undeclared" in text and "§3.3 schema" in text and "t: no STATE" in text
