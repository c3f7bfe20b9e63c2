"""components/timestamps.py: Kustomer's timestamps, which order as text."""

from datetime import datetime, timezone

from source_kustomer.components.timestamps import cursor_value, kustomer_timestamp, merged, normalized, to_utc


def test_every_iso_form_reads_as_utc_and_writes_in_kustomer_s_form():
    assert to_utc("2024-01-31T10:00:00Z") == datetime(2024, 1, 31, 10, tzinfo=timezone.utc)  # "Z" on Python 3.10 too
    assert normalized("2024-01-31T12:00:00.123456+02:00") == "2024-01-31T10:00:00.123Z"
    assert normalized("2024-01-31") == "2024-01-31T00:00:00.000Z"
    assert kustomer_timestamp(datetime(2024, 1, 31, 10, 0, 0, 999999, tzinfo=timezone.utc)) == "2024-01-31T10:00:00.999Z"


def test_only_kustomer_s_form_is_a_cursor_value():
    assert cursor_value({"updatedAt": "2024-01-31T10:00:00.000Z"}, "updatedAt") == "2024-01-31T10:00:00.000Z"
    assert cursor_value({"updatedAt": "2024-01-31"}, "updatedAt") is None and cursor_value(None, "updatedAt") is None


def test_ranges_that_overlap_or_touch_merge():
    a, b, c, d = "2024-01-01T00:00:00.000Z", "2024-01-02T00:00:00.000Z", "2024-01-02T00:00:00.001Z", "2024-02-01T00:00:00.000Z"
    assert merged([[c, d], [a, b]]) == [[a, d]]  # a millisecond apart: nothing between them
    assert merged([[a, b], [d, d]]) == [[a, b], [d, d]]
