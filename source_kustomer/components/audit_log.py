"""Kustomer's only trace of a hard delete is its audit-log entry: one reader of the delete events, for the deletion
markers of searched streams and for the lists whose pages deletes shift (the `deletions` stream reads the same
manifest definition, `audit_log_deletes`, as a stream of its own)."""

from typing import Any, Dict, List, Optional

from airbyte_cdk.sources.types import StreamSlice

from source_kustomer.components.errors import error_handler_of, short


class AuditLogDeletes:
    """The delete events of the audit log between two times, read with `retriever` (an auxiliary retriever: its error
    handler skips a refusal quietly, so that each feature says once what the refusal means for it)."""

    def __init__(self, retriever: Any) -> None:
        self.retriever = retriever
        self.unavailable: Optional[str] = None  # why, once the audit log could not be read

    def read(self, start: str, end: str) -> Optional[List[Dict[str, Any]]]:
        """The delete events created from `start` to `end` (Kustomer's form, inclusive), or None where the audit log
        cannot tell (refused, not in the org's plan, failing), with `unavailable` saying why."""
        if self.unavailable is not None:
            return None
        window = StreamSlice(partition={}, cursor_slice={"start_time": start, "end_time": end})
        try:
            rows = [getattr(row, "data", row) for row in self.retriever.read_records({}, window)]
        except Exception as error:  # an auxiliary read never fails the stream
            self.unavailable = f"the audit log failed ({short(error)})"
            return None
        ignored = getattr(error_handler_of(self.retriever), "ignored", None)
        if ignored:
            self.unavailable = next(iter(ignored.values()))
            return None
        return [row for row in rows if row.get("eventVerb") == "delete"]
