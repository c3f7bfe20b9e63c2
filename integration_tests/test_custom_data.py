"""Issue 7 through the real `source-kustomer` command: custom attributes as typed columns, one stream per klass,
CSAT responses, conversation times, queues, audit logs and deletion rows."""

import re

import pytest

from integration_tests import cli
from integration_tests.expected import after, expected_ids, klass_stream
from integration_tests.fake_kustomer import API_KEY, DEFAULT_KLASS, KLASS_FIELDS, METADATA, Dataset, FakeKustomer, Faults

SUFFIX_TYPES = {"Num": "number", "Bool": "boolean", "At": "string", "Str": "string", "Txt": "string", "Url": "string",
                "Tree": "string"}
TYPED = {"customers": "customer", "conversations": "conversation", "companies": "company", "messages": "message"}


@pytest.fixture
def org():
    # A limit it never reaches: audit_logs and deletions read a year of one-day windows; pacing has its own tests.
    with FakeKustomer(Dataset({"customers": 120, "conversations": 80, "messages": 100, "users": 30}),
                      faults=Faults(rate_limit=10**6)) as server:
        yield server


def connect(server):
    return {"organization": "acme", "api_key": API_KEY, "base_url": server.url}


def discover(server):
    run = cli.run("discover", connect(server))
    assert run.returncode == 0, run.stdout[-2000:]
    return run, {s["name"]: s for s in run.of_type("CATALOG")[0]["streams"]}


def read(server, streams, state=None, catalog=None):
    if catalog is None:
        catalog = cli.configured_catalog(discover(server)[0].of_type("CATALOG")[0], streams, incremental=True)
    run = cli.run("read", connect(server), catalog, state)
    assert run.returncode == 0 and not run.errors(), run.stdout[-3000:]
    return run, catalog


def expected_columns(fields: dict) -> dict:
    """`custom_<name>` -> JSON type, for the attributes Kustomer has not deleted."""
    return {f"custom_{name}": SUFFIX_TYPES[re.search(r"(Num|Bool|At|Str|Txt|Url|Tree)$", name)[1]]
            for name, spec in fields.items() if not isinstance(spec, dict)}


def custom_columns(stream: dict) -> dict:
    return {name: [t for t in spec["type"] if t != "null"][0]
            for name, spec in stream["json_schema"]["properties"].items() if name.startswith("custom_")}


def test_discover_types_every_custom_attribute_from_the_metadata(org):
    _, streams = discover(org)
    for stream, resource in TYPED.items():
        assert custom_columns(streams[stream]) == expected_columns(METADATA[resource]), stream
    dates = [name for name in METADATA["customer"] if name.endswith("At")]
    assert dates and all(streams["customers"]["json_schema"]["properties"][f"custom_{d}"]["format"] == "date-time"
                         for d in dates)
    assert "custom" in streams["customers"]["json_schema"]["properties"]  # the raw object stays


def test_one_stream_per_klass_with_its_own_typed_schema_and_a_safe_name(org):
    org.dataset.create("klasses", 1)  # a klass made after the data: no kobjects yet
    _, streams = discover(org)
    klasses = [k["attributes"]["name"] for k in org.dataset.all("klasses")]
    per_klass = {name: s for name, s in streams.items() if name.startswith("kobjects_")}
    assert len(per_klass) == len(klasses) and all(re.fullmatch(r"kobjects_[a-z0-9_]+", n) for n in per_klass)
    for klass in klasses:
        stream = per_klass[klass_stream(klass)]
        assert custom_columns(stream) == expected_columns(KLASS_FIELDS.get(klass, DEFAULT_KLASS)), klass
        assert set(stream["supported_sync_modes"]) == {"full_refresh", "incremental"}
    assert "kobjects" in streams and not custom_columns(streams["kobjects"])  # the combined table stays untyped


def test_without_the_metadata_role_discover_warns_and_keeps_the_untyped_schema():
    with FakeKustomer(Dataset({"customers": 20}), faults=Faults(forbidden={"metadata"})) as server:
        run, streams = discover(server)
    assert all(not custom_columns(s) for s in streams.values())
    warnings = [m["log"]["message"] for m in run.messages if m["type"] == "LOG" and m["log"]["level"] == "WARN"]
    assert any("customers" in w and "org.permission.metadata.read" in w for w in warnings), warnings
    assert "kobjects_order" in streams  # still offered, only untyped


def test_custom_columns_carry_the_values_of_custom(org):
    run, _ = read(org, ["customers", "kobjects_subscription"])
    for stream, source in (("customers", org.dataset.all("customers")), ("kobjects_subscription", org.dataset.kobjects["subscription"])):
        rows = {r["id"]: r for r in run.records(stream)}
        assert rows.keys() == {r["id"] for r in source}
        for record in source:
            for name, value in record["attributes"]["custom"].items():
                if value is not None:
                    assert rows[record["id"]][f"custom_{name}"] == value


def test_a_klass_stream_reads_its_kobjects_then_searches_its_own_context(org):
    run, catalog = read(org, ["kobjects_order"])
    assert {r["id"] for r in run.records("kobjects_order")} == {k["id"] for k in org.dataset.kobjects["order"]}
    touched = org.dataset.touch("kobjects", [org.dataset.kobjects["order"][3]["id"]], at=after(run))
    org.requests_log.clear()
    second, _ = read(org, ["kobjects_order"], state=run.final_states(), catalog=catalog)
    state = run.final_states()[0]["stream"]["stream_state"]["updatedAt"][:23]
    at_boundary = {k["id"] for k in org.dataset.kobjects["order"] if k["attributes"]["updatedAt"][:23] == state}
    got = [r["id"] for r in second.records("kobjects_order")]
    assert touched[0]["id"] in got and set(got) <= {touched[0]["id"]} | at_boundary  # search re-reads its boundary
    contexts = {e["body"]["queryContext"] for e in org.requests_log if e["path"] == "/v1/customers/search"}
    assert contexts == {"kobject_order"}


def test_satisfaction_responses_are_the_surveys_sent_with_conversations(org):
    run, _ = read(org, ["satisfaction_responses", "satisfaction_surveys"])
    surveyed = {c["id"]: c["attributes"] for c in org.dataset.all("conversations")
                if (c["attributes"].get("satisfactionLevel") or {}).get("status")}
    rows = {r["id"]: r for r in run.records("satisfaction_responses")}
    assert surveyed and rows.keys() == surveyed.keys()
    for id_, attributes in surveyed.items():
        level = attributes["satisfactionLevel"]
        assert rows[id_]["conversationId"] == id_ and rows[id_]["status"] == level["status"]
        assert rows[id_].get("rating") == level["rating"] and rows[id_]["form"] == level["form"]
    forms = {s["id"] for s in org.dataset.all("satisfaction")}
    assert {r["id"] for r in run.records("satisfaction_surveys")} == forms >= {r["form"] for r in rows.values()}


def test_hard_deletes_arrive_as_deletion_rows_and_as_markers_in_their_stream(org):
    def markers(run, stream):
        return {r["id"]: r for r in run.records(stream) if r.get("_ab_cdc_deleted_at")}

    run, catalog = read(org, ["deletions", "audit_logs", "conversations", "customers"])
    earlier = expected_ids(org.dataset, "deletions")  # deleted before the data was made, still in the audit log
    assert earlier and sorted(r["id"] for r in run.records("deletions")) == sorted(earlier)
    assert not markers(run, "conversations")  # a first sync: the destination holds nothing deleted since
    logged = [e["attributes"] for e in org.dataset.audit_logs if e["attributes"]["eventVerb"] == "delete"]

    at = after(run)
    gone = {"conversation": org.dataset.all("conversations")[0]["id"], "customer": org.dataset.all("customers")[-1]["id"]}
    org.dataset.delete("conversations", [gone["conversation"]], hard=True, at=at)
    org.dataset.delete("customers", [gone["customer"]], hard=True, at=at)
    second, _ = read(org, ["deletions", "audit_logs", "conversations", "customers"], state=run.final_states(), catalog=catalog)
    rows = {r["id"]: r for r in second.records("deletions")}
    assert set(gone.values()) <= rows.keys() <= set(gone.values()) | set(earlier)  # and what sat on the boundary
    for type_, id_ in gone.items():
        assert rows[id_]["objectType"] == type_ and rows[id_]["deletedAt"] == at
    events = {(r["objectId"], r["eventVerb"]) for r in second.records("audit_logs")}
    assert {(id_, "delete") for id_ in gone.values()} <= events
    # Each stream carries markers for its own deleted records, which a deduplicated destination applies.
    for stream, type_ in (("conversations", "conversation"), ("customers", "customer")):
        found = markers(second, stream)
        assert gone[type_] in found and set(found) <= {gone[type_]} | {e["objectId"] for e in logged}, stream
        marker = found[gone[type_]]
        assert marker["deleted"] is True and marker["_ab_cdc_deleted_at"] == marker["deletedAt"] == rows[gone[type_]]["deletedAt"]
