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


def windows_asked(api) -> list[tuple[datetime, datetime]]:
    def at(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    sent = [parse_qs(urlsplit(r.url).query) for r in calls(api) if r.path == "/v1/audit-logs" and "before" not in r.qs]
    return [(at(q["filter[start]"][0]), at(q["filter[end]"][0])) for q in sent]


def test_audit_log_windows_widen_while_the_log_is_empty_each_a_checkpoint(api):
    """Newest first, a window of the audit log is a checkpoint only once read whole. An empty log costs a request per
    window, and the windows widen (a day, then up to 30): 400 days of an empty log in about twenty requests."""
    api.get(f"{API}/audit-logs", json=page([]))
    output = read_stream("audit_logs", {**CONFIG, "start_date": "2000-01-01"})  # at most 400 days back
    windows = windows_asked(api)
    assert 400 / 30 <= len(windows) <= 20, windows
    assert windows[0][1] - windows[0][0] == timedelta(days=1)
    assert all(later[0] - earlier[1] == timedelta(milliseconds=1) for earlier, later in zip(windows, windows[1:]))
    assert all(end - start <= timedelta(days=30) for start, end in windows)
    states = [m.state.stream.stream_state.createdAt for m in output.state_messages]
    assert len(states) >= len(windows) and states == sorted(states)  # a state after each window


def test_an_audit_log_window_too_full_for_one_checkpoint_is_asked_again_narrower(api):
    """A first page that reports far more entries than a checkpoint's worth (`meta.total`): that window is asked again
    narrower, so a state still comes about every 5,000 entries."""
    def answer(request, context):
        start, end = (datetime.fromisoformat(request.qs[k][0].upper().replace("Z", "+00:00")) for k in ("filter[start]", "filter[end]"))
        total = int((end - start).total_seconds() // 2)  # an entry every two seconds
        return {"meta": {"count": min(total, 1000), "total": total}, "links": {"next": None}, "data": []}

    api.get(f"{API}/audit-logs", json=answer)
    read_stream("audit_logs", {**CONFIG, "start_date": (datetime.now(timezone.utc) - timedelta(days=60)).strftime("%Y-%m-%d")})
    windows = windows_asked(api)
    first, then = windows[0], windows[1]
    assert then[0] == first[0] and then[1] - then[0] < first[1] - first[0]  # the same start, narrower
    kept = [w for w, following in zip(windows, windows[1:]) if following[0] > w[0]]  # the windows read whole
    assert len(kept) > 5 and all((end - start).total_seconds() // 2 <= 4 * 5000 for start, end in kept)
