"""components/audit_log.py: the audit log's delete events, or why they cannot be had (each feature says it once)."""

from source_kustomer.components.audit_log import AuditLogDeletes


class Log:
    """A retriever of the audit log: its rows, or a failure."""

    def __init__(self, rows=(), failure=None, ignored=None):
        self.rows, self.failure = rows, failure
        self.requester = type("Requester", (), {"error_handler": type("Handler", (), {"ignored": ignored or {}})()})()

    def read_records(self, schema, window):
        if self.failure:
            raise self.failure
        return iter(self.rows)


def test_only_delete_events_are_kept():
    rows = [{"eventVerb": "delete", "objectId": "1"}, {"eventVerb": "update", "objectId": "2"}]
    assert AuditLogDeletes(Log(rows)).read("a", "b") == [rows[0]]


def test_a_failure_or_a_refusal_makes_it_unavailable_with_the_reason_and_it_is_not_asked_again():
    failing = AuditLogDeletes(Log(failure=RuntimeError("503 after retries")))
    assert failing.read("a", "b") is None and "503 after retries" in failing.unavailable
    failing.retriever = None  # it is not asked again: a read now would fail
    assert failing.read("a", "b") is None
    refused = AuditLogDeletes(Log(ignored={401: "Kustomer refused its audit log (HTTP 401: Unauthorized)"}))
    assert refused.read("a", "b") is None and refused.unavailable.startswith("Kustomer refused its audit log")
