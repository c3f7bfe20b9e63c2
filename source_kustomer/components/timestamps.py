"""Kustomer's timestamps: `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC with milliseconds, which order as text."""

from datetime import datetime, timedelta, timezone
from typing import Any, List, Mapping, Optional


def to_utc(value: Any) -> datetime:
    text = str(value)
    # Python 3.10's fromisoformat reads no "Z" (3.11's does).
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("z", "Z") else text)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def kustomer_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def normalized(value: Any) -> str:
    """Any ISO 8601 date or date-time in Kustomer's own form."""
    return kustomer_timestamp(to_utc(value))


def now_minus(seconds: float) -> str:
    return kustomer_timestamp(datetime.now(timezone.utc) - timedelta(seconds=seconds))


def cursor_value(record: Any, field: str) -> Optional[str]:
    """A record's cursor value in Kustomer's own form (which orders as text), or None."""
    value = record.get(field) if isinstance(record, Mapping) else None
    return value if isinstance(value, str) and len(value) == 24 and value.endswith("Z") else None


def merged(ranges: List[list]) -> List[list]:
    """Ranges of times in Kustomer's form, those that overlap or touch (a millisecond apart) merged."""
    result: List[list] = []
    for low, high in sorted(ranges):
        if result and to_utc(low) <= to_utc(result[-1][1]) + timedelta(milliseconds=1):
            result[-1][1] = max(result[-1][1], high)
        else:
            result.append([low, high])
    return result
