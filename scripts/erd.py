"""The connector's tables and how they join, generated from source_kustomer/manifest.yaml: a Mermaid erDiagram for
docs/kustomer.md (between `<!-- erd:start -->` and `<!-- erd:end -->`) and the same diagram as an SVG beside it
(docs/kustomer-erd.svg) for places that do not render Mermaid.

    python scripts/erd.py --write            # rewrite the block in docs/kustomer.md and the SVG
    python scripts/erd.py --check            # exit 1 when either differs from what the manifest gives
    python scripts/erd.py --print            # the Mermaid block on stdout
    python scripts/erd.py --explain          # every column the foreign-key rule looked at, and what it decided
    options: --docs PATH (default docs/kustomer.md), --image PATH (default docs/kustomer-erd.svg),
             --manifest PATH (default source_kustomer/manifest.yaml)

Everything comes from the manifest: the streams (`streams:`, and each `dynamic_streams:` template drawn once as
`kobjects_KLASS`, standing for the `kobjects_<klass>` table of every klass), their primary keys, cursor fields and
JSON schemas (`schemas:`). A stream added to the manifest appears the next time the script runs; unit_tests/
test_erd.py fails while the committed diagram is not what the script makes.

Foreign keys are found by name (Kustomer's relationships become `<relationship>Id` columns, see README "How it is
built"), with the rule:

1. A string column `<x>Id` references the stream whose records are of type `<x>`: `<x>` in snake_case and plural
   (`customerId` -> customers, `klassId` -> klasses, `auditLogId` -> audit_logs, `slaVersionId` -> sla_versions),
   or, when no stream has that name, the one stream whose name ends in `_<plural>` (`categoryId` -> kb_categories).
2. `<role>By` names a user: `createdById`, `modifiedById`, `deletedById`, `endedById`, `pinnedById` -> users.
3. An array column of ids is many-to-many: `<x>Ids` as rule 1, `…Users` -> users, `…Teams` -> teams
   (`assignedUsers`, `assignedTeams`, `createdByTeams`, `sentByTeams`), and an array named like a stream (`tags`,
   `categories` -> kb_categories).
4. A `<x>Id` whose stream the connector does not sync (`orgId`, `templateId`, `subStatusId`, ...) is no foreign key
   here; `--explain` lists them. `id`, `externalId` and the external-id arrays are never foreign keys.

What the rule cannot guess is in EXPLICIT (columns not named `<x>Id`: `members`, `sentBy`, `form`, ...),
KIND_ALIASES (`assignedToId` -> users, `resourceId` -> conversations, `scheduleId` -> business_schedules),
SAME_TABLE (`parentId`), ONE_TO_ONE (`satisfaction_responses.conversationId`), POLYMORPHIC (`deletions.id`) and
NEVER (external ids, `objectId`). GROUPS places tables in the picture; a stream it does not name is placed by what it
joins (a conversationId: per-conversation) or how the manifest reads it (a reference list).

To keep the picture readable, the `createdById`/`modifiedById`/`deletedById` of reference, routing, knowledge-base
and custom-object tables (who last edited a tag or a queue) are listed in their tables but not drawn as lines.

The SVG is drawn by this script (no dependency): boxes, monospace text whose width is estimated from its length,
and curves; the same manifest gives a byte-identical file.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "source_kustomer" / "manifest.yaml"
DOCS = ROOT / "docs" / "kustomer.md"
IMAGE = ROOT / "docs" / "kustomer-erd.svg"
START, END = "<!-- erd:start -->", "<!-- erd:end -->"
TEMPLATE_NAME = "kobjects_KLASS"  # the per-klass streams' template (template_name); no klass stream is named so

# --- what the naming rule cannot guess --------------------------------------------------------------------------
# column -> target stream, for columns not named <x>Id / <x>Ids (or named so but meaning something else).
EXPLICIT = {
    "members": "users",  # teams.members: user ids
    "userMentions": "users",  # notes: [{type: user, id}]
    "activeUsers": "users",
    "sentBy": "users",  # satisfaction_responses: the user the survey was sent for
    "assignedUser": "users",  # kobjects
    "form": "satisfaction_surveys",  # satisfaction_responses: the survey form
}
# <x> of a column <x>Id that names no type: the relationship's role -> the stream it names.
KIND_ALIASES = {
    "assignedTo": "users",  # work_items: the agent an item was routed to
    "resource": "conversations",  # work_items: the routed record (resourceType: conversation)
    "schedule": "business_schedules",  # holidays: their business schedule
}
SAME_TABLE = {"parentId"}  # shortcuts.parentId, kb_categories.parentId: a row of the same table
NEVER = {"id", "externalId", "externalIds", "sharedExternalIds", "facebookIds", "instagramIds", "smoochIds",
         "objectId"}  # objectId: the record of any table objectType names (audit logs)
ONE_TO_ONE = {("satisfaction_responses", "conversationId")}  # one CSAT row per conversation, the same id
# (table, column) -> the tables the column may name, decided by another column: drawn zero-or-one to zero-or-one.
POLYMORPHIC = {("deletions", "id"): (["conversations", "customers", "messages"], "the deleted record, by objectType")}
JOIN_NOTES = {("kobjects", "klassId"): "klasses.name", (TEMPLATE_NAME, "klassId"): "klasses.name"}
USER_AUDIT = {"createdById", "modifiedById", "deletedById"}

# Where each table goes in the picture. Names not (yet) in the manifest are ignored.
GROUPS = {
    "core": ["customers", "companies", "conversations", "messages", "notes"],
    "per-conversation": ["satisfaction_responses", "conversation_times", "conversation_events",
                         "conversation_forwards", "message_attachments"],
    "reference": ["users", "teams", "tags", "brands", "shortcuts", "satisfaction_surveys", "business_schedules",
                  "business_schedule_holidays", "custom_attribute_metadata", "snoozes"],
    "routing": ["queues", "work_sessions", "work_items", "routing_statuses", "slas", "sla_versions"],
    "audit": ["audit_logs", "deletions"],
    "knowledge base": ["kb_articles", "kb_categories"],
    "custom objects": ["klasses", "kobjects", TEMPLATE_NAME],
    "other": [],
}
# Groups whose createdById/modifiedById/deletedById lines are not drawn (see the module docstring).
QUIET_AUDIT_GROUPS = {"reference", "routing", "knowledge base", "custom objects", "other"}
COLORS = {"core": "#2563eb", "per-conversation": "#0891b2", "reference": "#7c3aed", "routing": "#16a34a",
          "audit": "#b45309", "knowledge base": "#db2777", "custom objects": "#dc2626", "other": "#475569"}


# --- the model ----------------------------------------------------------------------------------------------------
@dataclass
class Column:
    name: str
    type: str  # Mermaid attribute type: string, timestamp, bigint, double, boolean, json, string[]
    keys: list[str] = field(default_factory=list)  # PK, FK
    comment: str = ""


@dataclass
class Table:
    name: str
    group: str
    primary_key: list[str]
    cursor: str | None
    properties: dict[str, Any]
    columns: list[Column] = field(default_factory=list)
    label: str = ""  # how the table is named in prose (kobjects_<klass>)


@dataclass(frozen=True)
class Relation:
    parent: str  # the "one" side (the referenced table), or one side of a many-to-many
    child: str  # the table holding the column
    columns: tuple[str, ...]
    kind: str  # "one-to-many", "many-to-many", "one-to-one", "polymorphic"


@dataclass
class Decision:
    table: str
    column: str
    target: str | None
    kind: str
    why: str


def _types(prop: dict) -> list[str]:
    kind = prop.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    return [k for k in kinds if k != "null"]


def column_type(prop: dict) -> str:
    kinds = _types(prop)
    if len(kinds) != 1:
        return "json"
    kind = kinds[0]
    if kind == "string":
        return "timestamp" if prop.get("format") == "date-time" else "date" if prop.get("format") == "date" else "string"
    if kind == "array":
        items = prop.get("items") or {}
        return "string[]" if _types(items) == ["string"] else "json"
    return {"integer": "bigint", "number": "double", "boolean": "boolean"}.get(kind, "json")


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def stream_of_type(kind: str, streams: Iterable[str]) -> str | None:
    """Rule 1: the stream whose records are of type `kind` (camelCase): its snake_case plural, or the one stream
    whose name ends in `_<plural>`."""
    return stream_named(plural(snake(kind)), streams)


def stream_named(name: str, streams: Iterable[str]) -> str | None:
    """The stream called `name`, else the one stream whose name ends in `_<name>` (`categories`: kb_categories)."""
    names = set(streams)
    if name in names:
        return name
    ending = [n for n in sorted(names) if n.endswith("_" + name)]
    return ending[0] if len(ending) == 1 else None


def decide(table: str, column: str, prop: dict, streams: Iterable[str]) -> Decision:
    """Whether `table.column` is a foreign key, to which table, and why (the rule in the module docstring)."""
    streams = list(streams)
    kinds = _types(prop)
    is_array = kinds == ["array"]
    if (table, column) in POLYMORPHIC:
        return Decision(table, column, None, "polymorphic", POLYMORPHIC[(table, column)][1])
    if column in NEVER:
        return Decision(table, column, None, "none", "never a foreign key")
    if column in EXPLICIT:
        target = EXPLICIT[column]
        kind = "many-to-many" if is_array else "one-to-many"
        return Decision(table, column, target if target in streams else None, kind, "explicit")
    if column in SAME_TABLE:
        return Decision(table, column, table, "one-to-many", "same table")
    if is_array:
        items = _types(prop.get("items") or {})
        if items not in (["string"], []):
            return Decision(table, column, None, "none", "array of non-strings")
        if column.endswith("Ids"):
            target = stream_of_type(column[:-3], streams)
        elif column.endswith("Users"):
            target = "users"
        elif column.endswith("Teams"):
            target = "teams"
        elif column in streams or stream_named(column, streams):
            target = stream_named(column, streams)
        else:
            return Decision(table, column, None, "none", "not a list of ids by its name")
        if target not in streams:
            return Decision(table, column, None, "none", f"names {column}, a stream the connector does not sync")
        return Decision(table, column, target, "many-to-many", "rule 3: array of ids")
    if kinds != ["string"] or not column.endswith("Id"):
        return Decision(table, column, None, "none", "not named <x>Id")
    kind = column[:-2]
    if kind in KIND_ALIASES:
        target = KIND_ALIASES[kind] if KIND_ALIASES[kind] in streams else None
        return Decision(table, column, target, "one-to-many" if target else "none", "explicit")
    if kind.endswith("By"):
        return Decision(table, column, "users" if "users" in streams else None, "one-to-many", "rule 2: <role>By")
    target = stream_of_type(kind, streams)
    if target is None:
        return Decision(table, column, None, "none", f"rule 4: no stream of type {kind} ({plural(snake(kind))})")
    kind_ = "one-to-one" if (table, column) in ONE_TO_ONE else "one-to-many"
    return Decision(table, column, target, kind_, "rule 1: <x>Id")


def resolved_streams(manifest: dict) -> list[tuple[str, dict, dict]]:
    """(name, resolved stream definition, raw definition) of every stream, templates of dynamic streams as
    TEMPLATE_NAME, in the manifest's order."""
    from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver

    resolved = ManifestReferenceResolver().preprocess_manifest(copy.deepcopy(manifest))
    out = []
    for raw, stream in zip(manifest.get("streams", []), resolved.get("streams", [])):
        name = stream.get("name") or stream.get("$parameters", {}).get("name")
        out.append((name, stream, raw))
    for raw, dynamic in zip(manifest.get("dynamic_streams", []), resolved.get("dynamic_streams", [])):
        out.append((template_name(dynamic["stream_template"].get("name") or "kobjects_klass")[0],
                    dynamic["stream_template"], raw["stream_template"]))
    return out


def template_name(name: str) -> tuple[str, str]:
    """A dynamic stream's template name as drawn, and as written in prose: kobjects_klass -> (kobjects_KLASS,
    kobjects_<klass>). Upper case: no stream the template makes can be named so."""
    prefix, _, rest = name.rpartition("_")
    return (f"{prefix}_{rest.upper()}", f"{prefix}_<{rest}>") if prefix else (name.upper(), f"<{name}>")


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _interpolated(value: Any, parameters: dict) -> Any:
    """`{{ parameters.x }}` / `{{ parameters['x'] }}` from the stream's $parameters; other values as they are."""
    if isinstance(value, str):
        match = re.fullmatch(r"\{\{\s*parameters(?:\.(\w+)|\[['\"](\w+)['\"]\])\s*\}\}", value.strip())
        if match:
            return parameters.get(match.group(1) or match.group(2))
    return value


def stream_facts(stream: dict) -> tuple[list[str], str | None, dict]:
    """Primary key, cursor field and JSON schema of a resolved stream (a StateDelegatingStream: its incremental
    stream's)."""
    inner = stream.get("incremental_stream") or stream
    parameters = {**stream.get("$parameters", {}), **inner.get("$parameters", {})}
    key = _interpolated(inner.get("primary_key", stream.get("primary_key")), parameters) or []
    key = [key] if isinstance(key, str) else [k if isinstance(k, str) else ".".join(k) for k in key]
    cursor = _interpolated((inner.get("incremental_sync") or {}).get("cursor_field"), parameters)
    loader = _first(inner.get("schema_loader") or {}) or {}
    schema = loader.get("schema") or {}
    return key, cursor, schema


def _group_of(name: str, raw: dict, properties: dict, streams: list[str]) -> str:
    for group, names in GROUPS.items():
        if name in names:
            return group
    ref = str(raw.get("$ref", ""))
    if name.startswith("kb_"):
        return "knowledge base"
    if name.startswith("kobjects"):
        return "custom objects"
    if any(decide(name, c, p, streams).target in ("conversations", "messages") for c, p in properties.items()):
        return "per-conversation"
    if ref.endswith("/reference_stream"):
        return "reference"
    if ref.endswith("/audit_log_stream"):
        return "audit"
    return "other"


def build(manifest: dict) -> tuple[list[Table], list[Relation], list[Decision]]:
    """The tables (in GROUPS order), the relations to draw, and every decision the rule made."""
    found = resolved_streams(manifest)
    names = [name for name, _, _ in found]
    order = {n: i for i, n in enumerate(n for names_ in GROUPS.values() for n in names_)}
    tables, decisions = [], []
    templates = [d["stream_template"] for d in manifest.get("dynamic_streams", [])]
    for name, stream, raw in found:
        key, cursor, schema = stream_facts(stream)
        properties = schema.get("properties") or {}
        label = template_name(raw.get("name") or "")[1] if raw in templates else name
        tables.append(Table(name, _group_of(name, raw, properties, names), key, cursor, properties, label=label))
    group_order = list(GROUPS)
    tables.sort(key=lambda t: (group_order.index(t.group), order.get(t.name, len(order)), names.index(t.name)))

    pairs: dict[tuple[str, str, str], list[str]] = {}
    for table in tables:
        for column, prop in table.properties.items():
            decision = decide(table.name, column, prop, names)
            decisions.append(decision)
            keys, comment = [], ""
            if column in table.primary_key:
                keys.append("PK")
            if decision.kind == "polymorphic":
                targets, why = POLYMORPHIC[(table.name, column)]
                targets = [t for t in targets if t in names]
                comment = f"{' / '.join(targets)}: {why}"
                for target in targets:
                    pairs.setdefault((target, table.name, "polymorphic"), []).append(column)
            elif decision.target:
                keys.append("FK")
                note = JOIN_NOTES.get((table.name, column))
                many = decision.kind == "many-to-many"
                comment = note or f"{decision.target}.id" + (" (many-to-many)" if many else "")
                quiet = column in USER_AUDIT and table.group in QUIET_AUDIT_GROUPS
                if quiet:
                    comment += ", line not drawn"
                else:
                    pairs.setdefault((decision.target, table.name, decision.kind), []).append(column)
            if column == table.cursor:
                comment = (comment + "; " if comment else "") + "cursor"
            if keys or column == table.cursor or decision.kind == "polymorphic":
                type_ = column_type(prop)
                table.columns.append(Column(column, type_, keys, comment))
        drawn = {c.name for c in table.columns}  # a schema read from the API at run time declares nothing here
        table.columns += [Column(k, "string", ["PK"]) for k in table.primary_key if k not in drawn]
        if table.cursor and table.cursor not in drawn:
            table.columns.append(Column(table.cursor, "timestamp", [], "cursor"))
        # the primary key, then the foreign keys (and polymorphic ids) in the schema's order, then the cursor
        table.columns.sort(key=lambda c: 0 if "PK" in c.keys else 1 if "FK" in c.keys or ":" in c.comment else 2)
        if table.name == TEMPLATE_NAME:
            table.columns.append(Column("custom_ATTR", "json", [], "one typed column per custom attribute of the klass"))
    if TEMPLATE_NAME in names:
        if "klasses" in names:
            pairs[("klasses", TEMPLATE_NAME, "one-to-many")] = ["one table per klass"]
        if "kobjects" in names:
            pairs[("kobjects", TEMPLATE_NAME, "one-to-one")] = ["id"]
    relations = [Relation(parent, child, tuple(cols), kind) for (parent, child, kind), cols in pairs.items()]
    return tables, relations, decisions


# --- Mermaid ------------------------------------------------------------------------------------------------------
CARDINALITY = {"one-to-many": "|o--o{", "many-to-many": "}o--o{", "one-to-one": "|o--o|", "polymorphic": "|o..o|"}


def mermaid(tables: list[Table], relations: list[Relation]) -> str:
    lines = ["erDiagram"]
    group = None
    for table in tables:
        if table.group != group:
            group = table.group
            lines.append(f"    %% {group}")
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            keys = f" {', '.join(column.keys)}" if column.keys else ""
            comment = f' "{column.comment}"' if column.comment else ""
            lines.append(f"        {column.type} {column.name}{keys}{comment}")
        lines.append("    }")
    for relation in relations:
        label = ", ".join(relation.columns)
        lines.append(f'    {relation.parent} {CARDINALITY[relation.kind]} {relation.child} : "{label}"')
    return "\n".join(lines)


def legend(tables: list[Table]) -> list[str]:
    names = {t.name for t in tables}
    items = [
        "Generated by `scripts/erd.py` from the manifest's streams and schemas: do not edit between the erd markers, "
        "run `python scripts/erd.py --write`. The same diagram as an image: [kustomer-erd.svg](kustomer-erd.svg).",
        "",
        "- Every table's primary key is `id`; a table lists its primary key (PK), its foreign keys (FK, with the "
        "table they name) and its cursor; the other columns are in the stream's schema.",
        "- A column `<x>Id` names a row of the table of `<x>` records (`customerId` → `customers`, `conversationId` → "
        "`conversations`); `createdById`, `modifiedById`, `deletedById` and other `<role>ById` name `users`. Arrays of "
        "ids (`assignedUsers`, `assignedTeams`, `createdByTeams`, `members`, `tags`) are many-to-many: unnest them "
        "to join.",
        "- `|o--o{`: one row of the left table, zero or more of the right. `}o--o{`: many-to-many through an array "
        "column.",
        "- The `createdById`/`modifiedById`/`deletedById` of reference, routing and custom-object tables name "
        "`users` too; their lines are left out to keep the picture readable.",
    ]
    if TEMPLATE_NAME in names:
        items.append(f"- `{TEMPLATE_NAME}` stands for the table of each custom-object klass, `kobjects_<klass>` "
                     "(the same rows as `kobjects` of that klass, plus a typed `custom_<attribute>` column per "
                     "custom attribute); `kobjects.klassId` holds the klass's name, so join `klasses` on `name`.")
    if "deletions" in names:
        items.append("- `deletions.id` is the id of the deleted conversation, customer or message (`objectType` says "
                     "which): anti-join it to leave out hard-deleted rows a destination kept.")
    if "orgId" in {c for t in tables for c in t.properties}:
        items.append("- `orgId` (the Kustomer org) and ids of things the connector does not sync (`templateId`, "
                     "`subStatusId`, ...) are left out.")
    return items


def _wrapped(item: str, width: int = 118) -> str:
    if not item:
        return item
    indent = "  " if item.startswith("- ") else ""
    return textwrap.fill(item, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def block(tables: list[Table], relations: list[Relation]) -> str:
    """What goes between the markers, markers included."""
    return "\n".join([START, "```mermaid", mermaid(tables, relations), "```", "",
                      *map(_wrapped, legend(tables)), END])


# --- SVG ----------------------------------------------------------------------------------------------------------
CHAR_W, ROW_H, HEAD_H, PAD, GAP_X, GAP_Y, MARGIN, TITLE_H = 7.5, 16, 22, 8, 90, 18, 24, 72
FONT = "font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\""
# Column order of the groups in the picture: the tables most joined (core, reference) in the middle.
SVG_COLUMNS = [["custom objects", "knowledge base"], ["core"], ["reference"], ["per-conversation"],
               ["routing", "audit", "other"]]


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _row_text(table: Table, column: Column) -> str:
    if column.name == "custom_ATTR":
        return f"{'':<5} custom_<attribute> (typed)"
    marks = "/".join(column.keys) if column.keys else ("C" if "cursor" in column.comment else "")
    target = ""
    if "FK" in column.keys:
        target = column.comment.split(",")[0].split(";")[0].replace(".id", "").replace(" (many-to-many)", "[]")
        target = f" → {target}"
    elif column.comment and "cursor" not in column.comment.split(";")[0] and column.name != "custom_ATTR":
        target = f" → {column.comment.split(':')[0]}"
    return f"{marks:<5} {column.name}{target}"


def _fmt(value: float) -> str:
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def svg(tables: list[Table], relations: list[Relation]) -> str:
    by_name = {t.name: t for t in tables}
    width = {t.name: max(len(t.label) + 2, *(len(_row_text(t, c)) for c in t.columns)) * CHAR_W + 2 * PAD
             for t in tables}
    height = {t.name: HEAD_H + ROW_H * len(t.columns) + PAD for t in tables}
    columns = [[t for t in tables if t.group in groups] for groups in SVG_COLUMNS]
    columns = [c for c in columns if c]
    pos: dict[str, tuple[float, float]] = {}
    x = MARGIN
    heights = []
    for column in columns:
        col_w = max(width[t.name] for t in column)
        y = MARGIN + TITLE_H
        group = None
        for table in column:
            if table.group != group:
                if group is not None:
                    y += GAP_Y
                group = table.group
                y += 18  # the group's caption
            pos[table.name] = (x, y)
            width[table.name] = col_w
            y += height[table.name] + GAP_Y
        heights.append(y)
        x += col_w + GAP_X
    total_w, total_h = x - GAP_X + MARGIN + 72, max(heights) + MARGIN  # room for loops out of the last column

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(total_w)}" height="{_fmt(total_h)}" '
           f'viewBox="0 0 {_fmt(total_w)} {_fmt(total_h)}" {FONT} font-size="12">',
           "<title>source-kustomer: tables and how they join</title>",
           f'<rect width="{_fmt(total_w)}" height="{_fmt(total_h)}" fill="#ffffff"/>',
           f'<text x="{MARGIN}" y="{MARGIN + 16}" font-size="18" font-weight="bold" fill="#111827">'
           "source-kustomer: tables and how they join</text>",
           f'<text x="{MARGIN}" y="{MARGIN + 36}" fill="#4b5563">PK primary key, FK foreign key (→ the table it names;'
           " [] an array of ids: many-to-many), C cursor.</text>",
           f'<text x="{MARGIN}" y="{MARGIN + 52}" fill="#4b5563">Lines run from a foreign key to the table it names'
           " (bar: one, fork: many; dashed: through an array, or by objectType). Generated by scripts/erd.py from the"
           " manifest.</text>"]

    def row_y(table: str, column: str | None) -> float:
        t = by_name[table]
        index = next((i for i, c in enumerate(t.columns) if c.name == column), None)
        _, y = pos[table]
        return y + HEAD_H / 2 if index is None else y + HEAD_H + ROW_H * index + ROW_H / 2 + 2

    edges = []
    for n, relation in enumerate(relations):
        if relation.parent not in pos or relation.child not in pos:
            continue
        color = COLORS[by_name[relation.parent].group]
        (px, _), (cx, _) = pos[relation.parent], pos[relation.child]
        py = row_y(relation.parent, "id")
        cy = row_y(relation.child, relation.columns[0] if relation.columns[0] in
                   {c.name for c in by_name[relation.child].columns} else None)
        pw, cw = width[relation.parent], width[relation.child]
        if abs(px - cx) < 1:  # same column: a loop out of the right side
            x1, x2 = cx + cw, px + pw
            bulge = 40 + 12 * (n % 4)
            path = f"M{_fmt(x1)},{_fmt(cy)} C{_fmt(x1 + bulge)},{_fmt(cy)} {_fmt(x2 + bulge)},{_fmt(py)} {_fmt(x2)},{_fmt(py)}"
            child_dir, parent_dir = 1, 1
        else:
            child_dir = 1 if px > cx else -1
            x1 = cx + cw if child_dir == 1 else cx
            x2 = px if child_dir == 1 else px + pw
            mid = abs(x2 - x1) / 2
            path = (f"M{_fmt(x1)},{_fmt(cy)} C{_fmt(x1 + child_dir * mid)},{_fmt(cy)} "
                    f"{_fmt(x2 - child_dir * mid)},{_fmt(py)} {_fmt(x2)},{_fmt(py)}")
            parent_dir = -child_dir
        dash = ' stroke-dasharray="4 3"' if relation.kind in ("many-to-many", "polymorphic") else ""
        edges.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-opacity="0.55" stroke-width="1.3"{dash}/>')
        # the child end: a fork (many) unless one-to-one; the parent end: a bar (one)
        if relation.kind in ("one-to-many", "many-to-many"):
            for dy in (-4, 0, 4):
                edges.append(f'<line x1="{_fmt(x1 + child_dir * 8)}" y1="{_fmt(cy)}" x2="{_fmt(x1)}" '
                             f'y2="{_fmt(cy + dy)}" stroke="{color}" stroke-width="1.3"/>')
        else:
            edges.append(f'<line x1="{_fmt(x1 + child_dir * 5)}" y1="{_fmt(cy - 4)}" x2="{_fmt(x1 + child_dir * 5)}" '
                         f'y2="{_fmt(cy + 4)}" stroke="{color}" stroke-width="1.3"/>')
        edges.append(f'<line x1="{_fmt(x2 + parent_dir * 5)}" y1="{_fmt(py - 4)}" x2="{_fmt(x2 + parent_dir * 5)}" '
                     f'y2="{_fmt(py + 4)}" stroke="{color}" stroke-width="1.3"/>')
    out += edges

    for column in columns:
        group = None
        for table in column:
            x, y = pos[table.name]
            color = COLORS[table.group]
            if table.group != group:
                group = table.group
                out.append(f'<text x="{_fmt(x)}" y="{_fmt(y - 6)}" font-size="11" font-weight="bold" '
                           f'fill="{color}">{_esc(group.upper())}</text>')
            w, h = width[table.name], height[table.name]
            out.append(f'<g><rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(w)}" height="{_fmt(h)}" rx="4" '
                       f'fill="#ffffff" stroke="{color}" stroke-width="1.5"/>')
            out.append(f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(w)}" height="{HEAD_H}" rx="4" fill="{color}"/>')
            out.append(f'<text x="{_fmt(x + PAD)}" y="{_fmt(y + 15)}" font-weight="bold" fill="#ffffff">'
                       f"{_esc(table.label)}</text>")
            for i, col in enumerate(table.columns):
                ty = y + HEAD_H + ROW_H * i + ROW_H / 2 + 6
                out.append(f'<text x="{_fmt(x + PAD)}" y="{_fmt(ty)}" fill="#111827" xml:space="preserve">'
                           f"{_esc(_row_text(table, col))}</text>")
            out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- files --------------------------------------------------------------------------------------------------------
def load(manifest_path: Path = MANIFEST) -> dict:
    return yaml.load(manifest_path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def generate(manifest_path: Path = MANIFEST) -> tuple[str, str]:
    """(the block for the docs, markers included; the SVG)."""
    tables, relations, _ = build(load(manifest_path))
    return block(tables, relations), svg(tables, relations)


def replace_block(text: str, new_block: str) -> str:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {START} and {END} are not both there, in that order")
    return text[:start] + new_block + text[end + len(END):]


def problems(docs: Path = DOCS, image: Path = IMAGE, manifest_path: Path = MANIFEST) -> list[str]:
    """What differs between the committed diagram and what the manifest gives (empty when up to date)."""
    new_block, new_svg = generate(manifest_path)
    found = []
    text = docs.read_text() if docs.exists() else ""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        found.append(f"{docs}: no {START} ... {END} block")
    elif text[start:end + len(END)] != new_block:
        found.append(f"{docs}: the diagram between the erd markers is not what the manifest gives")
    if not image.exists():
        found.append(f"{image}: missing")
    elif image.read_bytes() != new_svg.encode():
        found.append(f"{image}: not what the manifest gives")
    return found


def write(docs: Path = DOCS, image: Path = IMAGE, manifest_path: Path = MANIFEST) -> None:
    new_block, new_svg = generate(manifest_path)
    docs.write_text(replace_block(docs.read_text(), new_block))
    image.write_bytes(new_svg.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the docs' block and the image")
    action.add_argument("--check", action="store_true", help="exit 1 when the docs' block or the image is stale")
    action.add_argument("--print", action="store_true", help="print the block")
    action.add_argument("--explain", action="store_true", help="print every foreign-key decision")
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--image", type=Path, default=IMAGE)
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args(argv)
    if args.print:
        print(generate(args.manifest)[0])
    elif args.explain:
        for d in build(load(args.manifest))[2]:
            if d.target or d.kind == "polymorphic" or d.column.endswith(("Id", "Ids", "Users", "Teams")):
                print(f"{d.table}.{d.column}: {d.target or '-'} ({d.kind}; {d.why})")
    elif args.write:
        write(args.docs, args.image, args.manifest)
        print(f"wrote the diagram into {args.docs} and {args.image}")
    else:
        found = problems(args.docs, args.image, args.manifest)
        for problem in found:
            print(problem, file=sys.stderr)
        if found:
            print("run: python scripts/erd.py --write", file=sys.stderr)
            return 1
        print("the diagram is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
