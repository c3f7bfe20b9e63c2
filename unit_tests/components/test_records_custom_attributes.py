"""Custom attributes as typed columns, per-klass streams and CSAT rows, against requests-mock."""

import json
import time

from airbyte_cdk.test.entrypoint_wrapper import discover

from source_kustomer import SourceKustomer
from source_kustomer.components.records import SatisfactionResponseExtractor as SatisfactionResponses, flatten
from unit_tests.conftest import API, CONFIG, page, read_stream, resource


def metadata(**properties) -> dict:
    return {"data": {"type": "metadata", "attributes": {"properties": properties}}}


def schemas() -> dict:
    output = discover(SourceKustomer(None, CONFIG, None), CONFIG, expecting_exception=True)
    assert not output.errors, output.errors
    return {s.name: s.json_schema["properties"] for s in output.catalog.catalog.streams}


def test_custom_attributes_become_columns_typed_by_their_suffix(api):
    api.get(f"{API}/metadata/customer", json=metadata(
        spentNum={"type": "number"}, vipBool={"type": "boolean"}, lastOrderAt={"type": "date"}, tierStr={"type": "string"},
        noteTxt={}, siteUrl={}, reasonTree={}, ordersId={"multi": True}, ownerId={"target": "user"},
        goneStr={"type": "string", "deletedAt": "2024-01-01T00:00:00.000Z"}, oddName={"type": "string"}))
    columns = {name: spec for name, spec in schemas()["customers"].items() if name.startswith("custom_")}
    assert {name: spec["type"] for name, spec in columns.items()} == {
        "custom_spentNum": ["null", "number"], "custom_vipBool": ["null", "boolean"], "custom_lastOrderAt": ["null", "string"],
        "custom_tierStr": ["null", "string"], "custom_noteTxt": ["null", "string"], "custom_siteUrl": ["null", "string"],
        "custom_reasonTree": ["null", "string"], "custom_ordersId": ["null", "array"], "custom_ownerId": ["null", "string"],
    }  # no column for a deleted attribute, nor for a name without a known suffix
    assert columns["custom_lastOrderAt"]["format"] == "date-time"


def test_one_stream_per_klass_named_safely_and_typed_by_its_own_metadata(api):
    api.get(f"{API}/klasses", json=page([resource("klass", 1, name="Shopify Orders"), resource("klass", 2, name="return-request")]))
    api.get(f"{API}/metadata/kobject.Shopify Orders", json=metadata(totalNum={}))
    api.get(f"{API}/metadata/kobject.return-request", json=metadata(reasonStr={}))
    found = schemas()
    assert found["kobjects_shopify_orders"]["custom_totalNum"]["type"] == ["null", "number"]
    assert found["kobjects_return_request"]["custom_reasonStr"]["type"] == ["null", "string"]
    assert "custom_totalNum" not in found["kobjects_return_request"]


def test_without_the_metadata_role_the_schema_is_untyped_and_a_warning_says_why(api, caplog):
    api.get(f"{API}/metadata/customer", status_code=403, json={"errors": [{"status": 403, "title": "Forbidden"}]})
    found = schemas()
    assert not [name for name in found["customers"] if name.startswith("custom_")] and "custom" in found["customers"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("customers" in w and "org.permission.metadata.read" in w and "Forbidden" in w for w in warnings), warnings


def test_a_broken_metadata_answer_leaves_the_columns_untyped_with_a_warning(api, monkeypatch, caplog):
    # The CDK caches the metadata page (DynamicSchemaLoader forces its cache on), so a retry may replay a broken one:
    # typing is then off for this discover, with a warning, and the stream keeps every attribute in `custom`.
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    broken = {"text": "<html>maintenance</html>", "status_code": 200}
    api.get(f"{API}/metadata/customer", [broken, broken, broken, broken, {"json": metadata(spentNum={})}])
    customers = schemas()["customers"]
    assert "custom" in customers and "updatedAt" in customers
    typed = customers.get("custom_spentNum", {}).get("type")
    warned = any("custom attributes are not typed" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert typed == ["null", "number"] or (typed is None and warned)


def test_records_carry_each_custom_attribute_as_its_own_column_and_in_custom(api):
    api.get(f"{API}/metadata/customer", json=metadata(spentNum={}, vipBool={}))
    custom = {"spentNum": 12.5, "vipBool": True, "addedTodayStr": "new"}  # the last not (yet) in the metadata
    api.get(f"{API}/customers", json=page([resource("customer", 1, custom=custom)]))
    [record] = [m.record.data for m in read_stream("customers").records]
    assert record["custom_spentNum"] == 12.5 and record["custom_vipBool"] is True
    assert "custom_addedTodayStr" not in record and record["custom"] == custom  # a column only where declared
    assert "custom_x" not in flatten({"attributes": {"custom": {"x": 1}}})  # only typed streams ask for columns


def test_a_satisfaction_row_per_conversation_that_was_sent_a_survey():
    survey = {"status": "rated", "rating": 4, "score": 1, "form": "f1", "createdAt": "2024-01-02T00:00:00.000Z"}
    conversations = [resource("conversation", 1, satisfactionLevel=survey, satisfaction=4),
                     resource("conversation", 2, satisfactionLevel={"sentByTeams": [], "answers": []})]
    conversations[0]["relationships"]["customer"] = {"data": {"type": "customer", "id": "c1"}}
    updated_at = conversations[0]["attributes"]["updatedAt"]

    class Page:
        content = json.dumps(page(conversations)).encode()

    [row] = SatisfactionResponses({"name": "satisfaction_responses"}).extract_records(Page())
    assert row["id"] == row["conversationId"] == f"{1:024x}" and row["customerId"] == "c1"
    assert (row["status"], row["rating"], row["score"], row["form"], row["satisfaction"]) == ("rated", 4, 1, "f1", 4)
    assert row["surveyCreatedAt"] == survey["createdAt"] and row["updatedAt"] == updated_at


def test_without_the_klass_role_only_the_fixed_streams_are_offered(api):
    api.get(f"{API}/klasses", status_code=403, json={"errors": [{"status": 403, "title": "Forbidden"}]})
    assert not [name for name in schemas() if name.startswith("kobjects_")]
