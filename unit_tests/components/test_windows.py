"""components/windows.py: the audit log read in one-day windows, each a checkpoint, paged back by `before` inside each."""

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit


from unit_tests.conftest import API, CONFIG, calls, page, read_stream, resource


def test_audit_logs_page_back_with_the_before_cursor_inside_each_window(api):
    first = page([resource("audit_log", 2, createdAt="2026-11-01T00:00:00.000Z")], "/v1/audit-logs?count=1000&before=2")
    api.get(f"{API}/audit-logs", [{"json": first}, {"json": page([resource("audit_log", 1, createdAt="2026-10-31T00:00:00.000Z")])}])
    # One window (they are a day long); a time, not a date: just after midnight today's date is past the sync's end.
    recent = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    output = read_stream("audit_logs", {**CONFIG, "start_date": recent})
    assert [m.record.data["id"] for m in output.records] == [f"{2:024x}", f"{1:024x}"]
    sent = [r for r in calls(api) if r.path == "/v1/audit-logs"]
    assert sent[0].qs["count"] == ["1000"] and "filter[start]" in sent[0].qs and "filter[end]" in sent[0].qs
    assert sent[1].qs["before"] == ["2"] and sent[1].qs["filter[start]"] == sent[0].qs["filter[start]"]


def test_audit_logs_are_read_in_one_day_windows_each_a_checkpoint(api):
    """Newest first, a window of the audit log is a checkpoint only once read whole: windows are a day long, and
    each window read emits a state."""
    api.get(f"{API}/audit-logs", json=page([]))
    start = (datetime.now(timezone.utc) - timedelta(days=3, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # at any hour
    output = read_stream("audit_logs", {**CONFIG, "start_date": start})
    sent = [parse_qs(urlsplit(r.url).query) for r in calls(api) if r.path == "/v1/audit-logs"]
    starts = sorted(datetime.fromisoformat(q["filter[start]"][0].replace("Z", "+00:00")) for q in sent)
    assert len(starts) == 4 and all(later - earlier == timedelta(days=1) for earlier, later in zip(starts, starts[1:]))
    # Windows run in parallel and the state is their low-water mark, so which windows' ends the states show depends
    # on the order they finish in: each is the start, a window's last millisecond or the sync's end, never behind.
    states = [datetime.fromisoformat(m.state.stream.stream_state.createdAt.replace("Z", "+00:00")) for m in output.state_messages]
    assert len(states) >= 4 and states == sorted(states), states
    ends = {starts[0]} | {s + timedelta(days=1, milliseconds=-1) for s in starts[:-1]} | {states[-1]}
    assert set(states) <= ends and states[-1] > starts[-1], states
