"""What a full sync of each stream delivers from a fake org's Dataset: the ids, worked out from the data."""

import re
from datetime import datetime, timedelta, timezone

from integration_tests.cli import stamps
from source_kustomer.components.timestamps import kustomer_timestamp

LISTS = {"queues": "routing/queues", "satisfaction_surveys": "satisfaction",  # stream -> Dataset list name
         "business_schedules": "schedules", "work_sessions": "routing/work-sessions", "work_items": "routing/work-items",
         "routing_statuses": "routing/statuses", "kb_articles": "kb/articles", "kb_categories": "kb/categories"}
METADATA_RESOURCES = ("customer", "conversation", "message", "company")  # and kobject.<klass> for every klass
AUDIT_LOG_DAYS = 400  # how far back audit_logs and deletions read (manifest: audit_log_stream)
DELETED_TYPES = {"conversation", "customer", "message"}  # what the deletions stream asks the audit log for


def sync_end(run) -> datetime:
    """Where a sync stopped reading: the latest cursor value in its final states (every stream's state moves to the
    sync's end, a minute before it started)."""
    found = [stamp for state in run.final_states() for stamp in stamps(state["stream"]["stream_state"])]
    return max(datetime.fromisoformat(stamp.replace("Z", "+00:00")) for stamp in found)


def after(run, milliseconds: int = 1) -> str:
    """A moment just after a sync's end, in Kustomer's format: a change stamped then is the next sync's to read."""
    return kustomer_timestamp(sync_end(run) + timedelta(milliseconds=milliseconds))


def klass_stream(klass: str) -> str:
    """The stream of one klass's kobjects: the manifest's safe name (lower case, `_` for other characters)."""
    return "kobjects_" + re.sub(r"[^a-z0-9]+", "_", klass.lower())


def expected_ids(dataset, stream: str) -> list[str]:
    if stream in LISTS:
        return [r["id"] for r in dataset.all(LISTS[stream])]
    if stream.startswith("kobjects_"):
        [klass] = [k for k in dataset.kobjects if klass_stream(k) == stream]
        return [r["id"] for r in dataset.kobjects[klass]]
    if stream == "satisfaction_responses":
        return [c["id"] for c in dataset.all("conversations") if (c["attributes"].get("satisfactionLevel") or {}).get("status")]
    if stream == "conversation_times":
        return [t["id"] for c in dataset.all("conversations") for t in dataset.conversation_times(c)]
    if stream == "conversation_events":
        return [e["id"] for c in dataset.all("conversations") for e in dataset.conversation_events(c)]
    if stream == "sla_versions":
        return [v["id"] for versions in dataset.sla_versions.values() for v in versions]
    if stream == "business_schedule_holidays":
        return [h["id"] for holidays in dataset.holidays.values() for h in holidays]
    if stream == "message_attachments":
        return [a["id"] for m in dataset.all("messages") for a in dataset.message_attachments(m)]
    if stream == "custom_attribute_metadata":
        resources = [*METADATA_RESOURCES, *(f"kobject.{klass}" for klass in dataset.kobjects)]
        return [f"{r}.{name}" for r in resources for name in ((dataset.metadata(r) or {}).get("attributes") or {}).get("properties", {})]
    if stream == "conversation_forwards":
        return [f["id"] for c in dataset.all("conversations") for f in dataset.conversation_forwards(c)]
    if stream in ("audit_logs", "deletions"):
        now = datetime.now(timezone.utc)
        since = kustomer_timestamp(now - timedelta(days=AUDIT_LOG_DAYS))
        until = kustomer_timestamp(now - timedelta(seconds=60))
        entries = [e["attributes"] | {"id": e["id"]} for e in dataset.audit_logs]
        entries = [e for e in entries if since <= e["createdAt"] <= until]
        if stream == "deletions":
            return [e["objectId"] for e in entries if e["eventVerb"] == "delete" and e["objectType"] in DELETED_TYPES]
        return [e["id"] for e in entries]
    return [r["id"] for r in dataset.all(stream)]
