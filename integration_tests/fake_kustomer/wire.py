"""What every part of the fake shares: the API key, the resource names and paths, Kustomer's timestamp format, its
error bodies and paging parameters. Imports nothing from the package."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

API_KEY = "test-api-key"
WRONG_REGION_KEY = "wrong-region-key"  # a valid-looking key of an org that lives on another pod

STREAM_TYPES = {  # list endpoint (URL plural) -> JSON:API type
    "customers": "customer", "conversations": "conversation", "messages": "message", "notes": "note",
    "users": "user", "teams": "team", "tags": "tag", "brands": "brand", "shortcuts": "shortcut",
    "companies": "company", "klasses": "klass", "routing/queues": "queue", "satisfaction": "satisfaction",
    "schedules": "schedule",
    # Routing, SLAs, knowledge base and settings (research notes §1-§8): served like the lists above.
    "routing/work-sessions": "work_session", "routing/work-items": "work_item", "routing/statuses": "status",
    "slas": "sla", "kb/articles": "kb_article", "kb/categories": "kb_category", "snoozes": "snooze",
}
PLURALS = {t: s for s, t in STREAM_TYPES.items()} | {"org": "orgs"}
MAX_PAGE_SIZE = {"users": 500, "teams": 500}  # every other list: 100
DEFAULT_PAGE_SIZE = 100
MAX_SEARCH_PAGE_SIZE = 500
SEARCH_CONTEXTS = {"customer": "customers", "conversation": "conversations", "message": "messages", "note": "notes",
                   "company": "companies"}  # plus `kobject` (every klass), `kobject_<klassName>`, `conversation_time`,
# and the routing contexts below
CONVERSATION_TIME = "conversation_time"  # the queryContext of every conversation's times
# queryContexts of routing records: only `<ctx>_updated_at` (time operators, sortable) and `<ctx>_id` (equals, in).
ROUTING_CONTEXTS = {"work_session": "routing/work-sessions", "work_item": "routing/work-items"}

# What forbidden / missing / bad_param / off_host_next / redirect name.
LIST_NAMES = (*STREAM_TYPES, "kobjects", "search", "metadata", "audit-logs", "conversation-times",
              "conversation-events", "conversation-forwards", "attachments", "holidays")
# Other spellings Faults accepts for the lists under a folder: "routing-statuses" is "routing/statuses".
LIST_ALIASES = {name.replace("/", "-"): name for name in STREAM_TYPES if "/" in name}
SEARCH_PATHS = ("/v1/customers/search", "/v1/customers/archive/search")
ELSEWHERE = "http://evil.example.invalid:9"  # .invalid never resolves, and nothing listens on port 9 (discard)
POD_HEADERS = {"X-Kustomer-Pod": "prod1", "Cache-Control": "no-cache,private"}  # on every recorded response
JSON_TYPE, HTML_TYPE = "application/json; charset=utf-8", "text/html; charset=utf-8"


def epoch_ms(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=timezone.utc).timestamp()) * 1000


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z)?")


DAY_MS = 86_400_000


@functools.lru_cache(maxsize=1 << 14)
def _date_of(days: int) -> str:
    return (EPOCH + timedelta(days=days)).strftime("%Y-%m-%dT")


def iso(ms: int) -> str:
    """Kustomer's timestamp format: UTC, millisecond precision, `Z`. Epoch milliseconds (an int) in."""
    days, rest = divmod(ms, DAY_MS)  # the date string is cached: building a dataset formats ~10,000 stamps
    seconds, milli = divmod(rest, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{_date_of(days)}{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}Z"


def business_ms(start: int, end: int) -> int:
    """The fake's business time: the milliseconds of [start, end) (epoch ms) that fall on Monday to Friday, UTC,
    whole days (no hours, no holidays); 0 if end <= start. Every `businessTime` the fake serves is this."""
    return max(0, _weekday_ms_before(end) - _weekday_ms_before(start)) if end > start else 0


def _weekday_ms_before(t: int) -> int:
    days, rest = divmod(t, DAY_MS)
    weeks, day = divmod(days + 3, 7)  # 1970-01-01 was a Thursday: day 0 is a Monday
    return (weeks * 5 + min(day, 5)) * DAY_MS + (rest if day < 5 else 0)


def micros(t: datetime) -> int:
    """An aware datetime as microseconds since the epoch: integers make `gt x` simply `gte x + 1`."""
    return (t - EPOCH) // timedelta(microseconds=1)


def parse_stamp(value) -> int | None:
    """`YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z` or `YYYY-MM-DD` (midnight UTC) as epoch microseconds; None if neither."""
    return _parse_stamp(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=1 << 18)  # index rebuilds and filter scans meet the same record stamps again and again
def _parse_stamp(value: str) -> int | None:
    m = STAMP.fullmatch(value)  # the formats Kustomer takes; fromisoformat alone would accept many more
    if not m:
        return None
    try:
        t = datetime(*(int(part or 0) for part in m.groups()[:6]), tzinfo=timezone.utc)
    except ValueError:  # e.g. month 13
        return None
    return micros(t) + int((m[7] or "").ljust(6, "0"))


def rel(type_: str, id_: str) -> dict:
    """A to-one relationship with both `links` and `data`."""
    return {"links": {"self": f"/v1/{PLURALS[type_]}/{id_}"}, "data": {"type": type_, "id": id_}}


def error_body(status: int, code: str, title: str, detail: str | None = None, parameter: str | None = None) -> dict:
    """Kustomer's recorded error shape: an integer `status`, and `source.parameter` (singular) naming the offending
    query parameter or body attribute; keys in the recorded order."""
    error = {"status": status} | ({"source": {"parameter": parameter}} if parameter else {}) | {"code": code}
    return {"errors": [error | {"title": title} | ({"detail": detail} if detail else {})]}


NOT_FOUND = error_body(404, "notfound", "Not Found")  # as recorded: `notfound`, one word
# A bad key, and by default also a key lacking a role: one body for both, so only GET /v1/auth/tokens/current
# (200 for any valid key) tells them apart.
UNAUTHORIZED = error_body(401, "unauthorized", "Unauthorized", "Invalid or expired auth token")


class BadRequest(Exception):
    """A 400 with Kustomer's error body; raised while parsing a request, answered by FakeKustomer.handle().
    `parameter`: the query parameter or body attribute at fault, as the recorded 400 names it."""

    def __init__(self, detail: str, parameter: str):
        super().__init__(detail)
        self.body = error_body(400, "badparam", "Bad Request", detail, parameter)


def paging(query: dict[str, str], max_size: int) -> tuple[int, int]:
    """(page, pageSize) of a list or search request: positive integers (else a 400 naming the parameter), the size
    silently clamped to the endpoint's maximum."""
    params = {}
    for name, default in (("page", 1), ("pageSize", DEFAULT_PAGE_SIZE)):
        raw = query.get(name, str(default)).strip()
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise BadRequest(f"{name} must be a positive integer", name)
        params[name] = int(raw)
    return params["page"], min(params["pageSize"], max_size)


def list_name(method: str, path: str) -> str | None:
    """The LIST_NAMES entry a request reads: the list for /v1/<list>[/<id>] (and /v1/schedules/default), "kobjects"
    for /v1/klasses/<name>[/<id>], "search" for both searches, "attachments" for /v1/conversations/<id>/attachments
    and /v1/messages/<id>/attachments/<id>; None for anything else (current user, org, token). See also
    included_names()."""
    if method == "POST" and path in SEARCH_PATHS:
        return "search"
    if method != "GET":
        return None
    if m := re.fullmatch(rf"/v1/({'|'.join(STREAM_TYPES)})(?:/[0-9a-f]{{24}})?", path):
        return m[1]
    if path == "/v1/schedules/default":
        return "schedules"
    if re.fullmatch(r"/v1/conversations/[0-9a-f]{24}/attachments|/v1/messages/[0-9a-f]{24}/attachments/[0-9a-f]{24}",
                    path):
        return "attachments"
    if m := re.fullmatch(r"/v1/(metadata|audit-logs)(?:/.*)?", path):
        return m[1]
    if re.fullmatch(r"/v1/conversations/[0-9a-f]{24}/times", path):
        return "conversation-times"
    if m := re.fullmatch(r"/v1/conversations/[0-9a-f]{24}/(events|forwards)", path):
        return f"conversation-{m[1]}"
    return "kobjects" if re.fullmatch(r"/v1/klasses/[^/]+(?:/[0-9a-f]{24})?", path) else None


def included_names(method: str, path: str, query: dict[str, str]) -> set[str]:
    """The LIST_NAMES a request also reads through `include`: "attachments" for GET /v1/messages and message
    searches with include=attachments, "holidays" for GET /v1/schedules/<id|default> with include=holidays. A refusal
    of one of them refuses the whole request (a key without the attachment role asking for attachments)."""
    includes = set(query.get("include", "").split(","))
    names = set()
    if "attachments" in includes and ((method == "GET" and path == "/v1/messages")
                                      or (method == "POST" and path in SEARCH_PATHS)):
        names.add("attachments")
    if "holidays" in includes and method == "GET" and re.fullmatch(r"/v1/schedules/(?:[0-9a-f]{24}|default)", path):
        names.add("holidays")
    return names


def next_link(path: str, query: dict[str, str], page: int, size: int) -> str:
    """A relative page link as Kustomer writes them: the request's other query parameters first, in their order,
    then `page` and `pageSize` (e.g. /v1/notes?sort=asc&page=2&pageSize=100)."""
    others = "&".join(f"{quote(k, safe='[]')}={quote(v, safe=',:[]')}" for k, v in query.items()
                      if k not in ("page", "pageSize"))
    return f"{path}?{others + '&' if others else ''}page={page}&pageSize={size}"
