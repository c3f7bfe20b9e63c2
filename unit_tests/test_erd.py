"""scripts/erd.py: the diagram of the tables in docs/kustomer.md (Mermaid) and docs/kustomer-erd.svg is what the
manifest gives, and the foreign-key rule finds the joins."""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("scripts_erd", ROOT / "scripts" / "erd.py")
erd = sys.modules["scripts_erd"] = importlib.util.module_from_spec(_spec)  # registered: its dataclasses look it up
_spec.loader.exec_module(erd)


@pytest.fixture(scope="module")
def manifest():
    return erd.load()


@pytest.fixture(scope="module")
def built(manifest):
    return erd.build(manifest)


def test_the_committed_diagram_is_what_the_manifest_gives():
    problems = erd.problems()
    assert not problems, "\n".join(problems) + "\nrun: python scripts/erd.py --write"


def decisions(built):
    return {(d.table, d.column): (d.target, d.kind) for d in built[2]}


def test_the_foreign_key_rule_on_the_manifest(built):
    found = decisions(built)
    assert found[("conversations", "customerId")] == ("customers", "one-to-many")
    assert found[("conversations", "createdById")] == ("users", "one-to-many")
    assert found[("conversations", "endedById")] == ("users", "one-to-many")
    assert found[("conversations", "brandId")] == ("brands", "one-to-many")
    assert found[("conversations", "assignedTeams")] == ("teams", "many-to-many")
    assert found[("conversations", "assignedUsers")] == ("users", "many-to-many")
    assert found[("conversations", "tags")] == ("tags", "many-to-many")
    assert found[("messages", "conversationId")] == ("conversations", "one-to-many")
    assert found[("conversation_times", "createdByTeams")] == ("teams", "many-to-many")
    assert found[("teams", "members")] == ("users", "many-to-many")
    assert found[("kobjects", "klassId")] == ("klasses", "one-to-many")
    assert found[("deletions", "auditLogId")] == ("audit_logs", "one-to-many")
    assert found[("satisfaction_responses", "conversationId")] == ("conversations", "one-to-one")
    assert found[("satisfaction_responses", "form")] == ("satisfaction_surveys", "one-to-many")
    assert found[("shortcuts", "parentId")] == ("shortcuts", "one-to-many")
    assert found[("deletions", "id")] == (None, "polymorphic")
    for never in (("conversations", "orgId"), ("conversations", "externalId"), ("customers", "facebookIds"),
                  ("conversations", "subStatusId"), ("audit_logs", "objectId"), ("conversations", "channels")):
        assert found.get(never, (None, "none"))[0] is None, never


@pytest.mark.parametrize("kind, streams, expected", [
    ("customer", ["customers"], "customers"),
    ("company", ["companies"], "companies"),
    ("klass", ["klasses"], "klasses"),
    ("auditLog", ["audit_logs"], "audit_logs"),
    ("slaVersion", ["slas", "sla_versions"], "sla_versions"),
    ("workSession", ["work_sessions"], "work_sessions"),
    ("status", ["routing_statuses"], "routing_statuses"),
    ("category", ["kb_categories", "kb_articles"], "kb_categories"),
    ("subStatus", ["conversations"], None),
    ("item", ["work_items", "other_items"], None),  # two streams end in _items: no guess
])
def test_a_type_names_its_stream(kind, streams, expected):
    assert erd.stream_of_type(kind, streams) == expected


def test_a_stream_added_to_the_manifest_is_drawn(manifest):
    """Streams other engineers add appear with their joins, from their schema alone."""
    grown = copy.deepcopy(manifest)
    for name, properties in (
        ("agent_shifts", {"id": {"type": ["null", "string"]}, "userId": {"type": ["null", "string"]},
                          "teamId": {"type": ["null", "string"]}, "statusId": {"type": ["null", "string"]},
                          "updatedAt": {"type": ["null", "string"], "format": "date-time"}}),
    ):
        grown["schemas"][name] = {"type": "object", "properties": properties}
        grown["streams"].append({"$ref": "#/definitions/reference_stream",
                                 "schema_loader": {"type": "InlineSchemaLoader", "schema": {"$ref": f"#/schemas/{name}"}},
                                 "$parameters": {"name": name, "resource": name, "role": "r"}})
    tables, relations, _ = erd.build(grown)
    shifts = next(t for t in tables if t.name == "agent_shifts")
    assert shifts.cursor == "updatedAt" and shifts.primary_key == ["id"]
    joins = {(r.parent, r.child, r.columns) for r in relations}
    assert {("users", "agent_shifts", ("userId",)), ("teams", "agent_shifts", ("teamId",)),
            ("routing_statuses", "agent_shifts", ("statusId",))} <= joins
    assert "agent_shifts {" in erd.mermaid(tables, relations)


MERMAID_ENTITY = re.compile(r"^    ([A-Za-z_][A-Za-z0-9_-]*) \{$")
MERMAID_ATTRIBUTE = re.compile(r'^        [A-Za-z_][A-Za-z0-9_\[\]]* [A-Za-z_*][A-Za-z0-9_]*( (PK|FK)(, (PK|FK))*)?( "[^"]*")?$')
MERMAID_RELATION = re.compile(r'^    ([A-Za-z0-9_]+) (\|o|\}o|\|\|)(--|\.\.)(o\||o\{|\|\|) ([A-Za-z0-9_]+) : "[^"]+"$')


def test_the_mermaid_is_well_formed(built):
    tables, relations, _ = built
    text = erd.mermaid(tables, relations)
    lines = text.splitlines()
    assert lines[0] == "erDiagram"
    entities, related = set(), set()
    for line in lines[1:]:
        if line.strip().startswith("%%") or line == "    }":
            continue
        if match := MERMAID_ENTITY.match(line):
            entities.add(match[1])
        elif match := MERMAID_RELATION.match(line):
            related |= {match[1], match[5]}
        else:
            assert MERMAID_ATTRIBUTE.match(line), line
    assert related <= entities
    assert {t.name for t in tables} == entities
    assert {"conversations", "messages", "users", "teams", erd.TEMPLATE_NAME, "kobjects"} <= entities
    block = erd.block(tables, relations)
    assert block.startswith(erd.START + "\n```mermaid\nerDiagram") and block.endswith(erd.END)


def test_every_table_lists_its_key_its_cursor_and_its_foreign_keys(built):
    tables, _, found = built
    for table in tables:
        names = [c.name for c in table.columns]
        assert names[0] == "id" and "PK" in table.columns[0].keys, table.name
        assert table.cursor in names or table.cursor is None, table.name  # None: full refresh only (slas)
        for decision in found:
            if decision.table == table.name and decision.target:
                assert decision.column in names, (table.name, decision.column)


def test_the_image_is_deterministic_and_draws_every_table(manifest):
    first, second = erd.generate()[1], erd.generate()[1]
    assert first == second
    root = ElementTree.fromstring(first)
    texts = {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")}
    for table in erd.build(manifest)[0]:
        assert table.label in texts


def test_check_and_write_on_a_copy(tmp_path, capsys):
    docs, image = tmp_path / "kustomer.md", tmp_path / "kustomer-erd.svg"
    docs.write_text(f"# Kustomer\n\n## Tables\n\n{erd.START}\nold\n{erd.END}\n\n## After\n")
    args = ["--docs", str(docs), "--image", str(image)]
    assert erd.main(["--check", *args]) == 1
    assert "run: python scripts/erd.py --write" in capsys.readouterr().err
    assert erd.main(["--write", *args]) == 0
    assert erd.main(["--check", *args]) == 0
    text = docs.read_text()
    assert text.startswith("# Kustomer\n\n## Tables\n\n" + erd.START) and text.endswith(erd.END + "\n\n## After\n")
    assert "```mermaid" in text and image.read_bytes() == erd.generate()[1].encode()

    image.write_text(image.read_text().replace("customers", "clients"))
    assert erd.main(["--check", *args]) == 1
    erd.main(["--write", *args])
    docs.write_text(docs.read_text().replace("customerId", "clientId"))
    assert erd.main(["--check", *args]) == 1

    docs.write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        erd.write(docs, image)
    assert erd.main(["--check", *args]) == 1
