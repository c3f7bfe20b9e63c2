"""Record shape: id/type, attributes at top level, relationships kept, `<relationship>Id` foreign keys."""

from source_kustomer.components.records import flatten
from unit_tests.conftest import API, page, read_stream, resource


def test_flatten_moves_attributes_up_and_adds_foreign_keys():
    record = {
        "type": "conversation",
        "id": "c1",
        "attributes": {"status": "open", "updatedAt": "2024-01-01T00:00:00.000Z", "custom": {"tierStr": "gold"}},
        "relationships": {
            "customer": {"links": {"self": "/v1/customers/u1"}, "data": {"type": "customer", "id": "u1"}},
            "createdBy": {"data": {"type": "user", "id": "a1"}},
            "messages": {"links": {"self": "/v1/conversations/c1/messages"}},
            "tags": {"data": [{"type": "tag", "id": "t1"}]},
            "klass": {"link": {"self": "/v1/klasses/order"}, "data": {"type": "klass", "id": "order"}},
            "empty": {"data": None},
        },
        "links": {"self": "/v1/conversations/c1"},
    }
    record = flatten(record)
    assert "attributes" not in record
    assert record["status"] == "open" and record["custom"] == {"tierStr": "gold"}
    assert (record["customerId"], record["createdById"], record["klassId"]) == ("u1", "a1", "order")
    assert not {"messagesId", "tagsId", "emptyId"} & record.keys()  # links-only, to-many and empty links add no key
    assert record["relationships"]["customer"]["data"]["id"] == "u1"
    assert record["links"] == {"self": "/v1/conversations/c1"}


def test_resource_id_and_type_win_over_attributes_of_the_same_name():
    record = {"type": "customer", "id": "real", "attributes": {"id": "fake", "type": "x", "name": "n"}}
    record = flatten(record)
    assert (record["id"], record["type"], record["name"]) == ("real", "customer", "n")


def test_an_attribute_keeps_its_value_over_a_derived_foreign_key():
    record = {"id": "1", "attributes": {"customerId": "from-api"}, "relationships": {"customer": {"data": {"id": "rel"}}}}
    record = flatten(record)
    assert record["customerId"] == "from-api"


def test_read_emits_flat_records(api):
    api.get(f"{API}/conversations", json=page([resource("conversation", 1, status="open")]))
    output = read_stream("conversations")
    [record] = [message.record.data for message in output.records]
    assert record["type"] == "conversation" and record["id"] == f"{1:024x}"
    assert record["status"] == "open" and record["orgId"] == "org1"
    assert record["updatedAt"] == "2024-05-01T10:00:00.000Z"
    assert api.last_request.headers["Authorization"] == "Bearer unit-test-secret-key"
    assert api.last_request.headers["Accept"] == "application/json"


def test_kobjects_are_read_per_klass_and_tagged_with_the_klass_name(api):
    api.get(f"{API}/klasses", json=page([resource("klass", 1, name="order"), resource("klass", 2, name="empty-one")]))
    api.get(f"{API}/klasses/order", json=page([resource("kobject.order", 10), resource("kobject.order", 11)]))
    api.get(f"{API}/klasses/empty-one", json=page([]))
    records = [message.record.data for message in read_stream("kobjects").records]
    assert sorted(r["id"] for r in records) == [f"{10:024x}", f"{11:024x}"]
    assert {r["klassName"] for r in records} == {"order"}


def test_start_date_drops_older_records_of_time_bound_streams_only(api):
    old, new = resource("customer", 1, updatedAt="2023-12-31T23:59:59.999Z"), resource("customer", 2)
    api.get(f"{API}/customers", json=page([old, new]))
    api.get(f"{API}/users", json=page([resource("user", 3, updatedAt="2020-01-01T00:00:00.000Z")]))
    config = {"organization": "acme", "api_key": "k", "start_date": "2024-01-01"}
    assert [m.record.data["id"] for m in read_stream("customers", config).records] == [new["id"]]
    assert len(read_stream("users", config).records) == 1  # reference tables are always whole


def test_fields_the_schema_does_not_declare_go_into_other_attributes_and_nothing_is_dropped(api):
    api.get(f"{API}/customers", json=page([resource("customer", 1, name="Ana", sentimentScore=0.4, brandNewThing={"a": 1},
                                                    custom={"tierStr": "gold"})]))
    [record] = [m.record.data for m in read_stream("customers").records]
    assert record["name"] == "Ana"  # declared: a column
    assert record["otherAttributes"] == {"sentimentScore": 0.4, "brandNewThing": {"a": 1}}  # kept, in one column
    assert "sentimentScore" not in record and "brandNewThing" not in record
    # The metadata here types no custom attribute: no column for it, and `custom` has it.
    assert "custom_tierStr" not in record and record["custom"] == {"tierStr": "gold"}


def test_ids_that_read_like_numbers_stay_the_strings_kustomer_sent(api):
    """The CDK reads a filled-in template as a Python literal: the id 000000000000000000000e10 would become 0.0. The
    fields the manifest fills in from ids say they are strings; a delete by no user has no `deletedById`."""
    logs = [{"type": "audit_log", "id": f"{n:021x}e10", "attributes": {
        "eventVerb": "delete", "objectType": "conversation", "objectId": "123456789012345678901234", "userId": user,
        "createdAt": "2024-05-01T10:00:00.000Z", "updatedAt": "2024-05-01T10:00:00.000Z"}}
        for n, user in ((0, None), (1, "000000000000000000001e99"))]
    api.get(f"{API}/audit-logs", json=page(logs))
    rows = [m.record.data for m in read_stream("deletions").records]
    assert rows and {(r["auditLogId"], r["id"], r.get("deletedById")) for r in rows} == {  # served for every window
        ("000000000000000000000e10", "123456789012345678901234", None),
        ("000000000000000000001e10", "123456789012345678901234", "000000000000000000001e99")}


def test_a_page_is_parsed_once_however_many_components_read_it(api, monkeypatch):
    """The error handler, the list reader and the extractor each read a page; parsing is most of a page's CPU."""
    from types import SimpleNamespace

    import source_kustomer.components.records as records

    parsed, real = [], records.orjson
    counting = SimpleNamespace(loads=lambda content: parsed.append(content) or real.loads(content),
                               JSONDecodeError=real.JSONDecodeError)
    monkeypatch.setattr(records, "orjson", counting)  # the module's parser only, not the test harness's
    api.get(f"{API}/tags", json=page([resource("tag", n) for n in range(1, 51)]))
    output = read_stream("tags")
    assert len(output.records) == 50 and not output.errors
    pages = [c for c in parsed if '"tag"' in (c.decode() if isinstance(c, bytes) else str(c))]
    assert len(pages) == 1, len(pages)
