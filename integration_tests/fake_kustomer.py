"""A small fake of the Kustomer REST API (v1) for integration tests.

It mimics the wire behaviour in /work/shared/reference/kustomer-api.md: JSON:API-style envelopes, page/pageSize
pagination with relative `links`, bearer-token auth and Kustomer-shaped error bodies. Standard library only and
deterministic: the same seed and sizes give byte-identical responses. Where that reference and the recorded live
responses (/work/shared/reference/real-payloads/) disagree, the defaults follow the recordings:

- error bodies as recorded: `{"errors":[{"status":404,"code":"notfound","title":"Not Found"}]}`, and 400s
  `{"errors":[{"status":400,"source":{"parameter":"<name>"},"code":"badparam","title":"Bad Request","detail":…}]}`;
  every `status` an integer;
- a key lacking a role gets 401 with the very body of a bad key (Kustomer: "401 … missing role, invalid auth token,
  or billing feature"); only `GET /v1/auth/tokens/current`, 200 for any valid key, tells the two apart;
- every response carries `X-Ratelimit-Limit`, `X-Ratelimit-Remaining`, `X-Kustomer-Pod: prod1` and
  `Cache-Control: no-cache,private`, and never `X-Ratelimit-Reset` or `Retry-After`;
- the rate limit counts per fixed window of the clock (Kustomer's minute), not from a client's first request.

Search (`POST /v1/customers/search`, and `/v1/customers/archive/search` for what search no longer sees) evaluates the
`and` criteria on `<ctx>_updated_at` / `<ctx>_created_at` (gte, gt, lte, lt, equals) and `<ctx>_id` (equals, in),
sorts by the first `sort` key then id, hides deleted records unless `includeDeleted`, sees only records updated in
the two years before the server's clock, and refuses pages past `search_page_cap`. `or` and `not` are accepted but
not evaluated: they never narrow the result.

Each conversation's times, events and forwards (`GET /v1/conversations/<id>/times`, `/events`, `/forwards`) are derived
from it, deterministically; an update of the conversation (touch) publishes a new event, add_forward adds a forward.

Tests change the data between syncs with Dataset.touch / create / delete; the server's clock (`FakeKustomer(now=...)`)
is also the default time those stamp.

Faults (`FakeKustomer(faults=Faults(...))`, or assign `fake.faults` while it runs) make it misbehave like a real API on
a bad day: 5xx, resets, truncated or HTML bodies, latency, hangs, 429s from an org-wide window (optionally shared with
`others_per_window` requests of the org's agents), refusals of named lists (`forbidden`: 401, or 403 naming the role
with `refusal_status=403`; `missing`: 404; `bad_param`: 400), and `next` links or redirects to another host. All are
off by default, drawn from a seeded RNG, and counted in `fake.stats`. The other readings stay available as options:
`reset_header` "epoch" / "delta" / "on_429" sends `X-Ratelimit-Reset` (epoch seconds on every response, seconds from
now on every response, epoch seconds on 429s only), and `window_start="request"` opens a window at the first request
after the previous one ended.

    python -m integration_tests.fake_kustomer --port 8585 [--scale 1.0] [--error-rate 0.1] [--rate-limit 300]
        [--reset-header none|epoch|delta|on_429] [--forbidden notes,search --refusal-status 401|403]
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import json
import math
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

API_KEY = "test-api-key"
WRONG_REGION_KEY = "wrong-region-key"  # a valid-looking key of an org that lives on another pod

# Record counts; each `kobject.<klassName>` key defines one klass and how many kobjects it holds.
DEFAULT_SIZES: dict[str, int] = {
    "customers": 250, "companies": 120, "conversations": 300, "messages": 650, "notes": 180, "users": 520,
    "teams": 15, "tags": 140, "brands": 3, "shortcuts": 110, "routing/queues": 4, "satisfaction": 2, "audit-logs": 120,
    "kobject.order": 230, "kobject.subscription": 40, "kobject.return-request": 0,
    "schedules": 3,
}
UNSCALED = {"teams", "brands", "routing/queues", "satisfaction", "schedules"}  # configuration-like streams keep their size under --scale

STREAM_TYPES = {  # list endpoint (URL plural) -> JSON:API type
    "customers": "customer", "conversations": "conversation", "messages": "message", "notes": "note",
    "users": "user", "teams": "team", "tags": "tag", "brands": "brand", "shortcuts": "shortcut",
    "companies": "company", "klasses": "klass", "routing/queues": "queue", "satisfaction": "satisfaction",
    "schedules": "schedule",
}
PLURALS = {t: s for s, t in STREAM_TYPES.items()} | {"org": "orgs"}
# Custom attributes (GET /v1/metadata/<resource>): name -> metadata `type`. The records' `custom` keys follow these;
# an entry with `deletedAt` is an attribute removed from the org, which the data no longer has.
METADATA = {
    "customer": {"totalSpentNum": "number", "vipBool": "boolean", "tierStr": "string", "notesTxt": "text",
                 "lastOrderAt": "date", "loyaltyIdStr": {"type": "string", "deletedAt": "2022-05-01T00:00:00.000Z"}},
    "conversation": {"orderNumberStr": "string", "refundBool": "boolean", "contactReasonTree": "tree"},
    "message": {},
    "company": {"industryStr": "string", "seatsNum": "number", "websiteUrl": "url"},
}
# Custom attributes of each klass's kobjects (metadata resource `kobject.<klass>`); klasses not named: DEFAULT_KLASS.
KLASS_FIELDS = {"subscription": {"planStr": "string", "seatsNum": "number", "renewsAt": "date", "activeBool": "boolean"}}
DEFAULT_KLASS = {"statusStr": "string", "amountNum": "number"}
AUDIT_OBJECTS = ("conversation", "customer", "message")  # whose updates the seeded audit log records
MAX_PAGE_SIZE = {"users": 500, "teams": 500}  # every other list: 100
DEFAULT_PAGE_SIZE = 100
MAX_SEARCH_PAGE_SIZE = 500
SEARCH_CONTEXTS = {"customer": "customers", "conversation": "conversations", "message": "messages", "note": "notes",
                   "company": "companies"}  # plus `kobject` (every klass) and `kobject_<klassName>`
SEARCH_HORIZON = timedelta(days=730)  # search sees two years back; archive search the rest
TIME_OPERATORS = ("gte", "gt", "lte", "lt", "equals")

FIRST = "Ana Ben Chloe Dev Emma Farid Grace Hiro Ines Jamal Kai Lena Mateo Nora Omar Priya Quinn Rosa Sam".split()
LAST = "Smith Garcia Chen Okafor Müller Rossi Kim Nguyen Silva Novak Haddad Jensen Patel Cohen Byrne".split()
WORDS = "order refund shipping delay lock battery invoice account password upgrade return warranty".split()
COLORS = "red orange yellow green teal blue purple pink gray".split()
CHANNELS = ["email", "chat", "sms", "voice"]


def epoch_ms(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=timezone.utc).timestamp()) * 1000


CREATED_FROM, UPDATED_FROM, OLD, UPDATED_TO = (epoch_ms(*d) for d in ((2019, 1, 1), (2021, 1, 1), (2024, 1, 1),
                                                                      (2026, 10, 1)))
ORG_CREATED, MAX_AGE = epoch_ms(2018, 1, 1), 3 * 365 * 86400_000  # records are at most ~3 years old when updated


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z)?")


def iso(ms: int) -> str:
    """Kustomer's timestamp format: UTC, millisecond precision, `Z`."""
    t = EPOCH + timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


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


def scaled_sizes(scale: float) -> dict[str, int]:
    return {k: v if k in UNSCALED else round(v * scale) for k, v in DEFAULT_SIZES.items()}


# --- Faults ---------------------------------------------------------------------------------------------------------

FAULT_KINDS = ("500", "502", "503", "reset", "truncated", "html")
# What forbidden / missing / bad_param / off_host_next / redirect name.
LIST_NAMES = (*STREAM_TYPES, "kobjects", "search", "metadata", "audit-logs", "conversation-times",
              "conversation-events", "conversation-forwards")
SEARCH_PATHS = ("/v1/customers/search", "/v1/customers/archive/search")
ELSEWHERE = "http://evil.example.invalid:9"  # .invalid never resolves, and nothing listens on port 9 (discard)
DEFAULT_RATE_LIMIT = 1000  # the headers' limit when none is enforced (Kustomer Enterprise: 1,000 per 60 s)
RESET_HEADERS = ("none", "epoch", "delta", "on_429")  # the forms of Faults.reset_header
WINDOW_STARTS = ("clock", "request")  # the forms of Faults.window_start
POD_HEADERS = {"X-Kustomer-Pod": "prod1", "Cache-Control": "no-cache,private"}  # on every recorded response
JSON_TYPE, HTML_TYPE = "application/json; charset=utf-8", "text/html; charset=utf-8"
CANNED = {  # fault kind -> (status, content type, body); "reset" and "truncated" are made by the handler
    "500": (500, JSON_TYPE, error_body(500, "internal_server_error", "Internal Server Error")),
    "502": (502, HTML_TYPE, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                            "</h1></center></body></html>"),  # written by the load balancer, not the API: HTML
    "503": (503, JSON_TYPE, error_body(503, "service_unavailable", "Service Unavailable")),
    "html": (200, HTML_TYPE, "<html>maintenance</html>"),
}
TOO_MANY = error_body(429, "too_many_requests", "Too Many Requests", "Rate limit exceeded")
NOT_FOUND = error_body(404, "notfound", "Not Found")  # as recorded: `notfound`, one word
# A bad key, and by default also a key lacking a role: one body for both, so only GET /v1/auth/tokens/current
# (200 for any valid key) tells them apart.
UNAUTHORIZED = error_body(401, "unauthorized", "Unauthorized", "Invalid or expired auth token")


@dataclass
class Faults:
    """Misbehaviour to switch on, and the readings of the API that the recordings leave open. The faults are off by
    default and the other defaults are what the recorded live responses and Kustomer's docs show (401 for a missing
    role, no reset header, clock-aligned minutes). Assigning `fake.faults` restarts the draws from `seed`; changing a
    field in place (fake.faults.error_rate = 0) keeps the sequence going."""
    error_rate: float = 0.0  # share of /v1 requests answered with a fault drawn from error_kinds instead
    error_kinds: tuple[str, ...] = FAULT_KINDS
    latency: float = 0.0  # seconds added before every answer
    slow_rate: float = 0.0  # share of /v1 requests held slow_seconds before answering: client read timeouts
    slow_seconds: float = 0.0
    rate_limit: int | None = None  # org-wide requests per window (Kustomer: 300-2,000 per 60 s); None: not enforced
    rate_window: float = 60.0  # seconds; tests use short windows
    # "clock": fixed windows [k * rate_window, (k + 1) * rate_window) of epoch time, Kustomer's "per minute";
    # "request": a window opens at the first request after the previous one ended.
    window_start: str = "clock"
    # Requests of the org's other users (agents, apps) counted into each window as it opens: they share the budget.
    others_per_window: int = 0
    search_rate_limit: int | None = None  # searches per window, also within rate_limit (Kustomer: 100 per 60 s)
    # X-Ratelimit-Reset: "none" never (no recorded response has it), "epoch" epoch seconds of the window's end on
    # every response, "delta" seconds from now to it on every response, "on_429" epoch seconds on 429s only.
    reset_header: str = "none"
    forbidden: frozenset[str] = frozenset()  # LIST_NAMES refused as for a key lacking the read role
    # Kustomer documents a missing role as 401, with the body of a bad key (UNAUTHORIZED); 403: the old reading, a
    # 403 naming the missing role.
    refusal_status: int = 401
    missing: frozenset[str] = frozenset()  # LIST_NAMES answered 404 notfound, e.g. audit-logs on a plan without them
    bad_param: frozenset[str] = frozenset()  # LIST_NAMES answered 400 badparam, naming the request's first parameter
    off_host_next: frozenset[str] = frozenset()  # LIST_NAMES whose links.next is an absolute URL on ELSEWHERE
    redirect: frozenset[str] = frozenset()  # LIST_NAMES answered 302 to the same path on ELSEWHERE
    seed: int = 1  # the same seed and the same sequence of requests meet the same faults

    def __post_init__(self):
        # A typo would otherwise switch nothing on, and the test meant to see the fault would pass vacuously.
        for name in ("forbidden", "missing", "bad_param", "off_host_next", "redirect"):
            names = frozenset([getattr(self, name)] if isinstance(getattr(self, name), str) else getattr(self, name))
            if unknown := names - set(LIST_NAMES):
                raise ValueError(f"{name}: unknown list names {sorted(unknown)} (use {', '.join(LIST_NAMES)})")
            setattr(self, name, names)
        self.error_kinds = tuple([self.error_kinds] if isinstance(self.error_kinds, str) else self.error_kinds)
        if unknown := set(self.error_kinds) - set(FAULT_KINDS):
            raise ValueError(f"error_kinds: unknown {sorted(unknown)} (use {', '.join(FAULT_KINDS)})")
        if self.refusal_status not in (401, 403):
            raise ValueError(f"refusal_status: {self.refusal_status!r} (use 401 or 403)")
        for name, forms in (("reset_header", RESET_HEADERS), ("window_start", WINDOW_STARTS)):
            if getattr(self, name) not in forms:
                raise ValueError(f"{name}: {getattr(self, name)!r} (use {', '.join(forms)})")
        if self.others_per_window < 0:
            raise ValueError(f"others_per_window: {self.others_per_window} (use 0 or more)")


@dataclass
class Window:
    """One rate-limit window: fixed on the clock, or opened by the first request after the previous one ended (see
    Faults.window_start). Only windows that saw a request are listed."""
    start: float  # epoch seconds
    served: int = 0  # our requests counted against rate_limit
    searches: int = 0  # of which searches, counted against search_rate_limit
    others: int = 0  # other users' requests (Faults.others_per_window): rate_limit leaves served <= limit - others


@dataclass
class Stats:
    """What the server did over HTTP (handle() called directly counts nowhere). Replace with Stats() to start over;
    that also opens a new rate-limit window (a clock-aligned one keeps its end but forgets what it counted)."""
    requests: int = 0  # every HTTP request received
    faults: Counter = field(default_factory=Counter)  # fault kind -> times answered with it
    slow: int = 0  # requests held slow_seconds
    rate_limited: int = 0  # 429s sent
    windows: list[Window] = field(default_factory=list)  # the last one may still be open
    in_flight: int = 0  # HTTP requests being answered now
    most_in_flight: int = 0  # the most at once

    @property
    def max_per_window(self) -> int:
        return max((w.served for w in self.windows), default=0)

    @property
    def max_searches_per_window(self) -> int:
        return max((w.searches for w in self.windows), default=0)


@dataclass
class Reply:
    """What the HTTP handler sends for one request."""
    status: int  # meaningless when reset
    headers: dict[str, str]
    body: bytes = b""
    reset: bool = False  # close the connection without answering
    cut: int | None = None  # send only this many bytes of the body (Content-Length still says all), then close


def list_name(method: str, path: str) -> str | None:
    """The LIST_NAMES entry a request reads: the list for /v1/<list>[/<id>], "kobjects" for
    /v1/klasses/<name>[/<id>], "search" for both searches; None for anything else (current user, org, token)."""
    if method == "POST" and path in SEARCH_PATHS:
        return "search"
    if method != "GET":
        return None
    if m := re.fullmatch(rf"/v1/({'|'.join(STREAM_TYPES)})(?:/[0-9a-f]{{24}})?", path):
        return m[1]
    if m := re.fullmatch(r"/v1/(metadata|audit-logs)(?:/.*)?", path):
        return m[1]
    if re.fullmatch(r"/v1/conversations/[0-9a-f]{24}/times", path):
        return "conversation-times"
    if m := re.fullmatch(r"/v1/conversations/[0-9a-f]{24}/(events|forwards)", path):
        return f"conversation-{m[1]}"
    return "kobjects" if re.fullmatch(r"/v1/klasses/[^/]+(?:/[0-9a-f]{24})?", path) else None


class BadRequest(Exception):
    """A 400 with Kustomer's error body; raised while parsing a request, answered by FakeKustomer.handle().
    `parameter`: the query parameter or body attribute at fault, as the recorded 400 names it."""

    def __init__(self, detail: str, parameter: str):
        super().__init__(detail)
        self.body = error_body(400, "badparam", "Bad Request", detail, parameter)


def stamp_of(record: dict, attr: str) -> int:
    return parse_stamp(record["attributes"].get(attr)) or 0  # a missing or odd timestamp counts as 1970


class SortedIndex:
    """Records sorted by (timestamp attribute, id), ascending or descending, ties always id-ascending like a real
    index on unchanged data. A time range is two bisects and a page a slice, so a search never sorts."""

    def __init__(self, records: list[dict], attr: str, desc: bool):
        self.desc = desc
        sign = -1 if desc else 1  # descending = ascending on the negated time; the id still breaks ties upwards
        keyed = sorted((sign * stamp_of(r, attr), r["id"], n) for n, r in enumerate(records))
        self.keys = [k for k, _, _ in keyed]
        self.records = [records[n] for _, _, n in keyed]

    def window(self, lo: float, hi: float) -> tuple[int, int]:
        """[start, end) of the records whose time t has lo <= t <= hi (inclusive bounds; +-inf when open)."""
        if self.desc:
            lo, hi = -hi, -lo
        start = bisect.bisect_left(self.keys, lo)
        return start, max(start, bisect.bisect_right(self.keys, hi))


class Dataset:
    """Every served record, as plain lists of JSON:API resource dicts.

    Tests change them between syncs with touch / create / delete, which stamp `clock()` by default: real UTC time,
    replaced by the FakeKustomer serving this dataset with its own clock. Hand edits work too, but after changing
    timestamps or `deleted` in place, do `dataset.version += 1` so search rebuilds its indexes.
    """

    def __init__(self, sizes: dict[str, int] | None = None, seed: int = 7):
        self.sizes = DEFAULT_SIZES | (sizes or {})  # partial overrides keep the other defaults
        self.seed = seed
        self.clock = lambda: datetime.now(timezone.utc)
        self.lock = threading.RLock()  # the server is threaded: mutations and index rebuilds take turns
        self.version = 0  # moved by every mutation; a search index built at another version is stale
        self._indexes: dict[tuple, tuple[tuple, SortedIndex]] = {}
        self._by_id: dict[int, tuple] = {}  # id(list) -> (stamp, list, its records in id order)
        self._builders: dict[str, tuple] = {}  # stream key -> (build, type, path): create() builds like _build
        self._counts: dict[str, int] = {}  # records ever built per stream key: the `i` of the next one
        # ObjectId = 4-byte creation second + 5 "machine" bytes + 3-byte counter. One machine value per id family
        # keeps ids unique across streams; the counter keeps same-second ids in creation order.
        self._machine, self._families = random.Random(seed).getrandbits(32) << 8, 0
        self.resources: dict[str, list[dict]] = {}
        self.kobjects: dict[str, list[dict]] = {}
        self.added_forwards: dict[str, list[dict]] = {}  # conversation id -> forwards made by add_forward()
        self.user_ids: list[str] = []
        self._build()

    def _rng(self, name: str) -> random.Random:
        # One generator per stream, so resizing one stream leaves the others' attributes alone.
        return random.Random(f"{self.seed}/{name}")  # str seeds go through sha512: stable across processes

    def _ids(self, seconds: list[int]) -> list[str]:
        self._families += 1
        return [f"{s:08x}{self._machine | self._families:010x}{n:06x}" for n, s in enumerate(seconds)]

    def _timeline(self, rng: random.Random, n: int) -> list[tuple[str, dict]]:
        """(id, timestamps) pairs in creation order. About a third of a big stream shares three 'burst' updatedAt
        values (bulk updates: keyset pagination must cope with ties); one burst is older than two years."""
        bursts = [rng.randrange(UPDATED_FROM, OLD), rng.randrange(OLD, UPDATED_TO), rng.randrange(OLD, UPDATED_TO)]
        rows = []
        for _ in range(n):
            burst = n >= 30 and rng.random() < 1 / 3
            updated = rng.choice(bursts) if burst else rng.randrange(UPDATED_FROM, UPDATED_TO)
            created = updated - (0 if rng.random() < 0.15 else rng.randrange(min(MAX_AGE, updated - CREATED_FROM)))
            rows.append((created, updated, created if rng.random() < 0.5 else rng.randint(created, updated)))
        rows.sort()
        ids = self._ids([c // 1000 for c, _, _ in rows])
        return [(i, {"createdAt": iso(c), "updatedAt": iso(u), "modifiedAt": iso(m)}) for i, (c, u, m) in zip(ids, rows)]

    def _make(self, stream: str, build, type_: str | None = None, path: str | None = None) -> list[dict]:
        """sizes[stream] resources; build(rng, i, id) returns (attributes, relationships), timestamps excluded."""
        type_ = type_ or STREAM_TYPES[stream]
        self._builders[stream] = build, type_, path or f"/v1/{PLURALS[type_]}"
        self._counts[stream] = self.sizes[stream]
        rng = self._rng(stream)
        return [self._resource(stream, rng, i, id_, stamps)
                for i, (id_, stamps) in enumerate(self._timeline(rng, self.sizes[stream]))]

    def _resource(self, stream: str, rng: random.Random, i: int, id_: str, stamps: dict) -> dict:
        build, type_, path = self._builders[stream]
        attrs, rels = build(rng, i, id_)
        return {"type": type_, "id": id_, "attributes": attrs | stamps,
                "relationships": {"org": rel("org", self.org_id)} | rels, "links": {"self": f"{path}/{id_}"}}

    def _derive(self, stream: str, record: dict) -> None:
        """Fields computed from a record's own timestamps, which _resource adds after build()."""
        attrs = record["attributes"]
        if stream == "messages":
            attrs["sentAt"] = attrs["createdAt"]
        elif stream == "conversations":
            attrs["endedAt"] = attrs["modifiedAt"] if attrs["ended"] else None
            # A CSAT survey on some conversations; its own generator leaves the conversation's attributes alone.
            rng = random.Random(f"{self.seed}/csat/{record['id']}")
            if rng.random() < 0.4 and self.resources.get("satisfaction"):
                status = rng.choice(["rated", "rated", "commented", "offered", "unresponded"])
                rating = rng.randint(1, 5) if status in ("rated", "commented") else None
                attrs["satisfaction"] = rating
                attrs["satisfactionLevel"] = {
                    "form": rng.choice(self.resources["satisfaction"])["id"], "formResponse": f"{rng.getrandbits(96):024x}",
                    "status": status, "rating": rating, "score": None if rating is None else int(rating >= 4),
                    "firstAnswer": "Quick and kind, thanks!" if status == "commented" else None,
                    "channel": attrs["channels"][0], "sentAt": attrs["modifiedAt"],
                    "createdAt": attrs["createdAt"], "updatedAt": attrs["modifiedAt"]}

    def custom(self, rng: random.Random, fields: dict) -> dict:
        """Values for custom attributes, by their type suffix."""
        values = {}
        for name, type_ in fields.items():
            if isinstance(type_, dict):  # a deleted attribute: no longer in the data
                continue
            if name.endswith("Num"):
                values[name] = round(rng.uniform(5, 900), 2)
            elif name.endswith("Bool"):
                values[name] = rng.random() < 0.5
            elif name.endswith("At"):
                values[name] = iso(rng.randrange(UPDATED_FROM, UPDATED_TO))
            else:
                values[name] = rng.choice(["new", "shipped", "cancelled"])
        return values

    def metadata(self, resource: str) -> dict | None:
        """GET /v1/metadata/<resource>: every custom attribute with its `type`, as Kustomer describes them."""
        klass = resource.removeprefix("kobject.")
        fields = METADATA.get(resource) if klass == resource else KLASS_FIELDS.get(klass, DEFAULT_KLASS)
        if fields is None or (klass != resource and klass not in self.kobjects):
            return None
        properties = {name: (type_ if isinstance(type_, dict) else {"type": type_}) | {
            "displayName": re.sub(r"(Str|Txt|Num|At|Bool|Url|Tree)$", "", name).title(),
            "updatedAt": iso(ORG_CREATED), "modifiedAt": iso(ORG_CREATED)} for name, type_ in fields.items()}
        return {"type": "metadata", "id": self.org_id, "attributes": {"properties": properties},
                "relationships": {"org": rel("org", self.org_id)}, "links": {"self": f"/v1/metadata/{resource}"}}

    def conversation_times(self, conversation: dict) -> list[dict]:
        """GET /v1/conversations/<id>/times: the agents' handle sessions on a conversation (0 to 3), in seconds."""
        rng = random.Random(f"{self.seed}/times/{conversation['id']}")
        attrs, rels = conversation["attributes"], conversation["relationships"]
        start = parse_stamp(attrs["createdAt"]) // 1000
        times = []
        for n in range(rng.randint(0, 3)):
            at = iso(start + rng.randrange(1, 86400_000))
            times.append({"type": "conversation_time", "id": f"{int(conversation['id'], 16) ^ (n + 1) << 92:024x}",
                          "attributes": {"createdAt": at, "handleAt": at, "handleTime": rng.randint(20, 1800),
                                         "messageAt": at, "messageTime": rng.randint(0, 600),
                                         "channels": attrs["channels"], "assignedUsers": attrs["assignedUsers"],
                                         "assignedTeams": attrs["assignedTeams"], "createdByTeams": []},
                          "relationships": {"org": rel("org", self.org_id), "conversation": rel("conversation", conversation["id"]),
                                            "customer": rels["customer"], "createdBy": rel("user", rng.choice(self.user_ids))}})
        return times

    def conversation_events(self, conversation: dict) -> list[dict]:
        """GET /v1/conversations/<id>/events: its `customer_event`s as Kustomer's example shows them. The create event,
        and, if the conversation was updated since, an update event published at its `updatedAt` (touch() makes a new
        one, with a new id). As in that example, every event carries the conversation's `createdAt`; `publishedAt` is
        the event's own time."""
        attrs, rels = conversation["attributes"], conversation["relationships"]
        rng = random.Random(f"{self.seed}/events/{conversation['id']}")
        user = rel("user", rng.choice(self.user_ids))
        customer = rels["customer"]["data"]["id"]
        events = [("create", attrs["createdAt"], None)]
        if attrs["updatedAt"] > attrs["createdAt"]:
            before = rng.choice(["open", "snoozed"]) if attrs["status"] == "done" else "open"
            events.append(("update", attrs["updatedAt"], {
                "attributes": {"updatedAt": {"op": "replace", "before": attrs["createdAt"], "after": attrs["updatedAt"]},
                               "status": {"op": "replace", "before": before, "after": attrs["status"]}},
                "relationships": {}}))
        served = []
        for verb, at, changes in events:
            id_ = self._derived_id(at, f"{conversation['id']}/event/{verb}/{at}")
            served.append({
                "type": "customer_event", "id": id_,
                "attributes": {"name": f"kustomer.conversation.{verb}", "type": "conversation", "publishedAt": at,
                               "createdAt": attrs["createdAt"], "updatedAt": at, "modifiedAt": at,
                               **({"changes": changes} if changes else {}), "location": None, "meta": None},
                "relationships": {"org": rel("org", self.org_id), "createdBy": user, "modifiedBy": user,
                                  "customer": rels["customer"], "conversation": rel("conversation", conversation["id"])},
                "links": {"self": f"/v1/customers/{customer}/events/{id_}"}})
        return served

    def conversation_forwards(self, conversation: dict) -> list[dict]:
        """GET /v1/conversations/<id>/forwards: about one conversation in five was forwarded by email, a few twice,
        plus what add_forward() made. Some name no conversation, as in Kustomer's example."""
        rng = random.Random(f"{self.seed}/forwards/{conversation['id']}")
        count = 0 if rng.random() < 0.8 else rng.choice([1, 1, 1, 2])
        start = parse_stamp(conversation["attributes"]["createdAt"]) // 1000
        forwards = []
        for n in range(count):
            created = start + rng.randrange(60_000, 86400_000)
            forwards.append(self._forward(conversation, rng, n, iso(created), iso(created + rng.randrange(3600_000))))
        return forwards + list(self.added_forwards.get(conversation["id"], []))

    def add_forward(self, conversation_id: str, at: str | datetime | None = None) -> dict:
        """A forward of the conversation made at `at` (default: now). It leaves the conversation's updatedAt alone:
        touch() the conversation too for a sync to find it (later syncs read the conversations that changed)."""
        with self.lock:
            [(_, conversation)] = self._lookup("conversations", [conversation_id])
            added = self.added_forwards.setdefault(conversation_id, [])
            stamp = self._stamp(at)
            rng = random.Random(f"{self.seed}/forwards/{conversation_id}/added/{len(added)}")
            added.append(self._forward(conversation, rng, 100 + len(added), stamp, stamp))
            self.version += 1
            return added[-1]

    def _forward(self, conversation: dict, rng: random.Random, n: int, created: str, updated: str) -> dict:
        rels = conversation["relationships"]
        id_ = self._derived_id(created, f"{conversation['id']}/forward/{n}")
        status = rng.choice(["sent", "sent", "draft", "failed"])
        body = f"Forwarding this conversation about your {rng.choice(WORDS)}."
        relationships = {"org": rel("org", self.org_id), "customer": rels["customer"],
                         "createdBy": rel("user", rng.choice(self.user_ids)),
                         "modifiedBy": rel("user", rng.choice(self.user_ids))}
        if rng.random() < 0.7:  # Kustomer's third example names no conversation
            relationships["conversation"] = rel("conversation", conversation["id"])
        return {"id": id_, "type": "forward",
                "attributes": {"app": rng.choice(["postmark", "gmail"]), "channel": "email",
                               "from": {"name": "Support", "email": "support@acme.example"},
                               "to": [{"name": "Billing", "email": "billing@acme.example"}],
                               "subject": conversation["attributes"]["name"], "body": body,
                               "payload": {"draftJs": {"blocks": [{"data": {}, "entityRanges": [], "inlineStyleRanges": [],
                                                                   "depth": 0, "type": "unstyled", "text": body,
                                                                   "key": f"{rng.getrandbits(20):05x}"}],
                                                       "entityMap": {}}},
                               "status": status, "createdAt": created, "updatedAt": updated, "modifiedAt": updated},
                "relationships": relationships}

    @staticmethod
    def _derived_id(stamp: str, key: str) -> str:
        """An ObjectId-like id for a record derived from another: `stamp`'s second, then 16 hex digits of `key`."""
        return f"{parse_stamp(stamp) // 1_000_000:08x}{hashlib.sha1(key.encode()).hexdigest()[:16]}"

    def _log_event(self, type_: str, id_: str, verb: str, stamp: str, changes: dict | None = None) -> None:
        """One audit-log entry (newest last): Kustomer's `kustomer.<type>.<verb>` events."""
        second = parse_stamp(stamp) // 1_000_000
        self.audit_logs.append({"type": "audit_log", "id": f"{second:08x}{0xadd17:010x}{len(self.audit_logs):06x}",
                                "attributes": {"eventName": f"kustomer.{type_}.{verb}", "eventVerb": verb,
                                               "org": self.org_id, "userId": self.machine_user["id"], "userType": "user",
                                               "objectId": id_, "objectType": type_, "client": "api", "ip": None,
                                               "changes": changes or {}, "createdAt": stamp, "publishedAt": stamp},
                                "relationships": {"org": rel("org", self.org_id)}})

    def _audit(self, rng: random.Random, p: float = 0.5) -> dict:
        """createdBy/modifiedBy on some records."""
        if not self.user_ids or rng.random() > p:
            return {}
        return {"createdBy": rel("user", rng.choice(self.user_ids)), "modifiedBy": rel("user", rng.choice(self.user_ids))}

    def _pick(self, rng: random.Random, ids: list[str], most: int) -> list[str]:
        return sorted(rng.sample(ids, min(len(ids), rng.randint(0, most))))

    def _build(self) -> None:  # streams in dependency order: relationships point at records that already exist
        res = self.resources
        self.org_id, self.token_id = self._ids([ORG_CREATED // 1000] * 2)
        self.org = {"type": "org", "id": self.org_id, "links": {"self": f"/v1/orgs/{self.org_id}"},
                    "attributes": {"name": "acme", "displayName": "Acme Inc", "createdAt": iso(ORG_CREATED),
                                   "updatedAt": iso(ORG_CREATED)}}

        def user(rng, i, id_):
            audit = self._audit(rng)  # before appending: the creator is an earlier user
            self.user_ids.append(id_)
            first, last = rng.choice(FIRST), rng.choice(LAST)
            name = "Airbyte" if i == 0 else f"{first} {last}"  # user 0: the machine user behind API_KEY
            email = "airbyte-api@acme.example" if i == 0 else f"{first}.{last}.{i}@acme.example".lower()
            return {"name": name, "displayName": name, "email": email,
                    "userType": "machine" if i == 0 or rng.random() < 0.03 else rng.choice(["user"] * 9 + ["limited"]),
                    "roles": ["org.user.customer.read", "org.user.conversation.read"] + ["org.admin"] * (i % 17 == 0),
                    "deletedAt": iso(rng.randrange(OLD, UPDATED_TO)) if rng.random() < 0.05 else None}, audit

        res["users"] = self._make("users", user)
        self.machine_user = res["users"][0]
        res["teams"] = self._make("teams", lambda rng, i, id_: ({
            "name": f"team-{i}", "displayName": f"Team {i}", "icon": "users",
            "members": self._pick(rng, self.user_ids, 12), "deleted": i == 3,
            "deletedAt": iso(OLD) if i == 3 else None}, self._audit(rng)))
        res["tags"] = self._make("tags", lambda rng, i, id_: ({
            "name": f"{rng.choice(WORDS)}-{i}", "color": rng.choice(COLORS), "deleted": rng.random() < 0.05},
            self._audit(rng)))
        res["brands"] = self._make("brands", lambda rng, i, id_: ({"name": f"Acme {i}" if i else "Acme", "default": i == 0},
                                                                  self._audit(rng)))
        res["shortcuts"] = self._make("shortcuts", lambda rng, i, id_: ({
            "name": f"{rng.choice(WORDS)}-reply-{i}", "draft": {"text": f"Thanks for asking about your {rng.choice(WORDS)}."},
            "isPrivate": rng.random() < 0.2, "deleted": rng.random() < 0.05, "rev": rng.randint(1, 5)}, self._audit(rng)))
        res["companies"] = self._make("companies", lambda rng, i, id_: ({
            "name": f"{rng.choice(LAST)} {rng.choice(['LLC', 'Ltd', 'GmbH', 'Inc'])}", "externalId": f"co-{i:04d}",
            "domains": [f"company{i}.example"], "emails": [], "phones": [], "tags": [], "rev": rng.randint(1, 9),
            "custom": {"industryStr": ["retail", "travel", "software"][i % 3], "seatsNum": 10 + i % 90,
                       "websiteUrl": f"https://company{i}.example"}}, self._audit(rng, 0.3)))
        res["routing/queues"] = self._make("routing/queues", lambda rng, i, id_: ({
            "name": "DEFAULT_QUEUE" if i == 0 else f"queue-{i}", "displayName": "Default" if i == 0 else f"Queue {i}",
            "priority": i, "itemSize": 1, "system": i == 0, "deleted": False, "restrictTransfersByUsers": False,
            "settings": {"overrideAssignment": "never"}}, self._audit(rng)))
        self.queue_ids = [q["id"] for q in res["routing/queues"]]
        res["satisfaction"] = self._make("satisfaction", lambda rng, i, id_: ({
            "name": f"CSAT {i}", "formType": "csat", "enabled": True, "channel": "email",
            "scale": {"type": "stars", "options": 5}, "ratingPrompt": "How did we do?", "questions": []}, self._audit(rng)))
        tag_ids, team_ids = [t["id"] for t in res["tags"]], [t["id"] for t in res["teams"]]
        brand_ids, company_ids = [b["id"] for b in res["brands"]], [c["id"] for c in res["companies"]]

        def customer(rng, i, id_):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            custom = {} if rng.random() < 0.1 else {  # typed-suffix keys, as in real orgs; some customers have none
                "totalSpentNum": round(rng.uniform(0, 2500), 2), "vipBool": rng.random() < 0.1,
                "tierStr": rng.choice(["bronze", "silver", "gold"]), "notesTxt": f"Asked about {rng.choice(WORDS)}.",
                "lastOrderAt": iso(rng.randrange(UPDATED_FROM, UPDATED_TO)) if rng.random() < 0.7 else None}
            rels = {"messages": {"links": {"self": f"/v1/customers/{id_}/messages"}}}  # links only, no data
            if company_ids and rng.random() < 0.8:
                rels["company"] = rel("company", rng.choice(company_ids))
            if rng.random() < 0.3:
                rels["createdBy"] = rel("user", rng.choice(self.user_ids))
            email = {"type": "home", "email": f"{first}.{last}.{i}@example.com".lower(), "verified": rng.random() < 0.5}
            phone = {"type": "mobile", "phone": f"+1555{rng.randrange(10**7):07d}", "verified": False}
            return {"name": f"{first} {last}", "displayName": f"{first} {last}", "firstName": first, "lastName": last,
                    "externalId": f"ext-{i:05d}" if rng.random() < 0.7 else None,
                    "emails": [email] if i % 9 else [], "phones": [phone] if rng.random() < 0.5 else [],
                    "externalIds": [], "socials": [], "urls": [], "locations": [], "tags": self._pick(rng, tag_ids, 3),
                    "custom": custom, "conversationCounts": {"all": 0, "snoozed": 0, "open": 0, "done": 0},
                    "deleted": rng.random() < 0.04, "verified": True, "rev": rng.randint(1, 40)}, rels

        res["customers"] = self._make("customers", customer)
        customers = self._customers_by_id = {c["id"]: c for c in res["customers"]}  # create() adds new customers

        def conversation(rng, i, id_):
            status, cust = rng.choice(["open", "done", "done", "snoozed"]), rng.choice(res["customers"])
            for key in ("all", status):  # keep the customer's roll-up consistent with its conversations
                cust["attributes"]["conversationCounts"][key] += 1
            rels = {"customer": rel("customer", cust["id"]),
                    "messages": {"links": {"self": f"/v1/conversations/{id_}/messages"}},
                    "createdBy": rel("user", rng.choice(self.user_ids)), "modifiedBy": rel("user", rng.choice(self.user_ids))}
            if brand_ids and rng.random() < 0.85:
                rels["brand"] = rel("brand", rng.choice(brand_ids))
            if rng.random() < 0.4:
                rels["queue"] = rel("queue", rng.choice(self.queue_ids))
            topic = rng.choice(WORDS)
            return {"name": f"Question about my {topic}", "preview": f"Hi, I have a problem with my {topic}",
                    "channels": [rng.choice(CHANNELS)], "status": status, "priority": rng.randint(1, 5),
                    "direction": rng.choice(["in", "in", "out"]), "messageCount": 0, "noteCount": 0,
                    "outboundMessageCount": 0, "tags": self._pick(rng, tag_ids, 2),
                    "assignedUsers": self._pick(rng, self.user_ids, 1), "assignedTeams": self._pick(rng, team_ids, 1),
                    "custom": {"orderNumberStr": f"#{rng.randrange(10**6):06d}", "refundBool": rng.random() < 0.2,
                               "contactReasonTree": f"{topic}.question"} if rng.random() < 0.6 else {},
                    "ended": status == "done", "endedAt": None, "rev": rng.randint(1, 30)}, rels

        res["conversations"] = self._make("conversations", conversation)

        def attach(rng, counter):  # pick a conversation; messages and notes share its customer
            conv = rng.choice(res["conversations"])
            conv["attributes"][counter] += 1
            cust = customers[conv["relationships"]["customer"]["data"]["id"]]
            return conv, cust, {"customer": rel("customer", cust["id"]), "conversation": rel("conversation", conv["id"])}

        def message(rng, i, id_):
            conv, cust, rels = attach(rng, "messageCount")
            out = rng.random() < 0.35
            ours, theirs = "support@acme.example", (cust["attributes"]["emails"] or [{"email": "anon@example.com"}])[0]
            sender, to = (ours, [theirs["email"]]) if out else (theirs["email"], [ours])
            if out:
                conv["attributes"]["outboundMessageCount"] += 1
                rels["createdBy"] = rel("user", rng.choice(self.user_ids))
            return {"channel": conv["attributes"]["channels"][0], "direction": "out" if out else "in",
                    "preview": f"About my {rng.choice(WORDS)}...", "subject": conv["attributes"]["name"],
                    "meta": {"from": sender, "to": to[0] if i % 40 == 5 else to},  # real API: `to` is sometimes a string
                    "sentAt": None, "auto": rng.random() < 0.1, "rev": rng.randint(1, 4)}, rels

        res["messages"] = self._make("messages", message)

        def note(rng, i, id_):
            _, _, rels = attach(rng, "noteCount")
            rels["createdBy"], deleted = rel("user", rng.choice(self.user_ids)), rng.random() < 0.05
            return {"body": f"Customer called about {rng.choice(WORDS)}; follow up.", "deleted": deleted,
                    "deletedAt": iso(UPDATED_TO) if deleted else None,
                    "userMentions": [{"type": "user", "id": u} for u in self._pick(rng, self.user_ids, 2)]}, rels

        res["notes"] = self._make("notes", note)
        for stream in ("messages", "conversations"):
            for record in res[stream]:
                self._derive(stream, record)

        # create("klasses") appends to `names`, so the klass builder names new klasses too.
        names = self._klass_names = [k.removeprefix("kobject.") for k in self.sizes if k.startswith("kobject.")]
        self.sizes["klasses"] = len(names)
        res["klasses"] = self._make("klasses", lambda rng, i, id_: ({
            "name": names[i], "displayName": names[i].replace("-", " ").title(), "icon": "cart",
            "color": rng.choice(COLORS), "status": "enabled", "klassSchema": {}, "mixins": []},
            {"kobjects": {"links": {"self": f"/v1/klasses/{names[i]}"}}}))

        def kobject_builder(name):
            def kobject(rng, i, id_):
                # Real quirks: the klass relationship uses `link`, not `links`, and its id is the klass name.
                rels = {"klass": {"link": {"self": f"/v1/klasses/{name}"}, "data": {"type": "klass", "id": name}}}
                if rng.random() < 0.85:
                    rels["customer"] = rel("customer", rng.choice(res["customers"])["id"])
                return {"externalId": f"{name}-{i:05d}", "title": f"{name.title()} #{1000 + i}",
                        "description": f"{rng.choice(WORDS).title()} {name}", "icon": "cart", "images": [],
                        "data": {"lineItems": rng.randint(1, 5)}, "tags": [], "rev": rng.randint(1, 6),
                        "custom": self.custom(rng, KLASS_FIELDS.get(name, DEFAULT_KLASS))}, rels
            return kobject

        self._kobject_builder = kobject_builder  # for klasses created later
        for name in names:
            self.kobjects[name] = self._make(f"kobject.{name}", kobject_builder(name), f"kobject.{name}",
                                             f"/v1/klasses/{name}")

        self.audit_logs = []  # newest last; hard deletes add theirs
        rng = self._rng("audit-logs")
        for n in range(self.sizes["audit-logs"]):
            type_ = rng.choice(AUDIT_OBJECTS)
            if n % 10 == 9:  # a record deleted before the data was made: only its audit-log entry is left
                self._log_event(type_, f"{rng.getrandbits(96):024x}", "delete", iso(rng.randrange(OLD, UPDATED_TO)))
            elif res[PLURALS[type_]]:
                record = rng.choice(res[PLURALS[type_]])
                self._log_event(record["type"], record["id"], "update", record["attributes"]["updatedAt"],
                                {"attributes": {"rev": {"op": "replace", "before": 1, "after": 2}}})
        self.audit_logs.sort(key=lambda e: (e["attributes"]["createdAt"], e["id"]))
        # Business schedules (GET /v1/schedules): Kustomer's example, weekday hours as [start, end] minutes from midnight.
        res["schedules"] = self._make("schedules", lambda rng, i, id_: ({
            "name": ["Business hours", "Weekend support", "Holiday cover"][i % 3] + (f" {i // 3 + 1}" if i >= 3 else ""),
            "hours": {str(day): (None if (day in (0, 6)) != (i % 3 == 1) else [[rng.choice([420, 480, 540]), rng.choice([960, 1020, 1080])]])
                      for day in range(7)},
            "timezone": rng.choice(["America/New_York", "Europe/Paris", "Asia/Kolkata"]), "default": i == 0},
            self._audit(rng, 1.0)))
        self.auth_token = {"type": "auth_token", "id": self.token_id,
                           "attributes": {"name": "Airbyte", "lastTokenChars": API_KEY[-4:],
                                          "roles": self.machine_user["attributes"]["roles"],
                                          "createdAt": iso(ORG_CREATED), "updatedAt": iso(ORG_CREATED)},
                           "relationships": {"org": rel("org", self.org_id), "user": rel("user", self.machine_user["id"])}}

    # --- Test-only mutations between syncs. `stream` is a list name (customers, ..., klasses) or "kobjects". ---

    def all(self, stream: str) -> list[dict]:
        """The current records of a stream (a copy of the list); "kobjects": every klass's."""
        with self.lock:
            return [r for records in self._lists(stream) for r in records]

    def touch(self, stream: str, ids, at: str | datetime | None = None) -> list[dict]:
        """An update: updatedAt and modifiedAt become `at` (default: the clock's now), rev goes up by one. The same
        `at` for many ids is a burst of ties, like a bulk update."""
        with self.lock:
            stamp = self._stamp(at)
            touched = [self._change(r, updatedAt=stamp, modifiedAt=stamp) for _, r in self._lookup(stream, ids)]
            self.version += 1
            return touched

    def create(self, stream: str, count: int, at: str | datetime | None = None, klass: str | None = None,
               head: bool = False) -> list[dict]:
        """`count` new records built like the initial ones, created and updated at `at` (default: now), with ids
        above every existing id (`head`: below every one, so that they are listed first and push the rest back). Stream "kobjects" needs klass=<name>; "klasses" also opens an empty kobject list.
        Like the initial build, new conversations/messages/notes raise their parents' counters (not their
        updatedAt: touch() the parents to model that)."""
        with self.lock:
            if stream == "kobjects":
                if klass not in self.kobjects:
                    raise ValueError(f"create('kobjects', ...) needs klass= one of {sorted(self.kobjects)}")
                key, records = f"kobject.{klass}", self.kobjects[klass]
            else:
                [records], key = self._lists(stream), stream
            stamp = self._stamp(at)
            rng = random.Random(f"{self.seed}/{key}/{self._counts[key]}")  # deterministic for the same calls
            created = []
            for id_ in self._fresh_ids(count, stamp, head):
                if stream == "klasses":
                    self._klass_names.append(f"klass-{self._counts[key]}")  # the klass builder reads names[i]
                record = self._resource(key, rng, self._counts[key], id_, dict.fromkeys(
                    ("createdAt", "updatedAt", "modifiedAt"), stamp))
                self._counts[key] += 1
                attrs = record["attributes"]
                attrs.update({k: v for k, v in (("deleted", False), ("deletedAt", None)) if k in attrs})  # born live
                self._derive(key, record)
                created.append(record)
            records.extend(created)
            if stream == "customers":
                self._customers_by_id.update((r["id"], r) for r in created)  # messages look their customer up
            for name in (r["attributes"]["name"] for r in created if stream == "klasses"):
                self.kobjects[name] = []
                self._builders[f"kobject.{name}"] = (self._kobject_builder(name), f"kobject.{name}",
                                                     f"/v1/klasses/{name}")
                self._counts[f"kobject.{name}"] = 0
            self.version += 1
            return created

    def delete(self, stream: str, ids, hard: bool = False, at: str | datetime | None = None) -> list[dict]:
        """Soft (default): deleted = True, deletedAt = updatedAt = `at` (default: now); the record stays listed.
        Hard: gone from every list, like a deleted conversation (404 by id). Returns the records."""
        with self.lock:
            found = self._lookup(stream, ids)
            if hard:
                gone = {r["id"] for _, r in found}
                for records in {id(records): records for records, _ in found}.values():
                    records[:] = [r for r in records if r["id"] not in gone]  # in place: the server holds the list
                deleted = [r for _, r in found]
                for record in deleted:  # Kustomer's only trace of a hard delete
                    self._log_event(record["type"], record["id"], "delete", self._stamp(at))
            else:
                stamp = self._stamp(at)
                deleted = [self._change(r, deleted=True, deletedAt=stamp, updatedAt=stamp) for _, r in found]
            self.version += 1
            return deleted

    def index(self, stream: str, attr: str, desc: bool = False, include_deleted: bool = False) -> SortedIndex:
        """The search index of a stream key (a list name, "kobject.<klass>" or "kobjects"), rebuilt only when the
        data changed since it was built."""
        with self.lock:
            lists = self._lists(stream)
            stamp = (self.version, sum(map(len, lists)))  # the length also notices records appended by hand
            key = (stream, attr, desc, include_deleted)
            cached = self._indexes.get(key)
            if not cached or cached[0] != stamp:
                live = [r for records in lists for r in records if include_deleted or not r["attributes"].get("deleted")]
                cached = self._indexes[key] = stamp, SortedIndex(live, attr, desc)
            return cached[1]

    def by_id(self, records: list[dict]) -> list[dict]:
        """A served list in id order (GET lists), re-sorted only when the data changed: 100,000 customers take
        ~35 ms to sort, once per page otherwise."""
        with self.lock:
            stamp = (self.version, len(records))
            cached = self._by_id.get(id(records))
            if not cached or cached[0] != stamp or cached[1] is not records:
                cached = self._by_id[id(records)] = stamp, records, sorted(records, key=lambda r: r["id"])
            return cached[2]

    def _lists(self, stream: str) -> list[list[dict]]:
        if stream == "kobjects":
            return list(self.kobjects.values())
        if stream.startswith("kobject.") and stream.removeprefix("kobject.") in self.kobjects:
            return [self.kobjects[stream.removeprefix("kobject.")]]
        if stream in self.resources:
            return [self.resources[stream]]
        raise ValueError(f"unknown stream {stream!r}")

    def _lookup(self, stream: str, ids) -> list[tuple[list[dict], dict]]:
        """(containing list, record) per id, in the order given; KeyError naming any id not found."""
        ids = list(dict.fromkeys([ids] if isinstance(ids, str) else ids))
        wanted = set(ids)
        found = {r["id"]: (records, r) for records in self._lists(stream) for r in records if r["id"] in wanted}
        if missing := [i for i in ids if i not in found]:
            raise KeyError(f"no {stream} with ids {missing}")
        return [found[i] for i in ids]

    @staticmethod
    def _change(record: dict, **changes) -> dict:
        # A new attributes dict rather than edits in place: a response being serialised in another thread never
        # sees a dict change size under it.
        attrs = record["attributes"]
        record["attributes"] = attrs | changes | ({"rev": attrs["rev"] + 1} if "rev" in attrs else {})
        return record

    def _stamp(self, at: str | datetime | None) -> str:
        """`at` (an ISO string or aware datetime; default: the clock's now) in Kustomer's millisecond format."""
        if at is None or isinstance(at, datetime):
            us = micros(at or self.clock())
        elif (us := parse_stamp(at)) is None:
            raise ValueError(f"not a timestamp: {at!r}")
        return iso(us // 1000)

    def _fresh_ids(self, count: int, stamp: str, head: bool = False) -> list[str]:
        """ObjectIds above every existing id: the creation second, or one past the newest id's second if that is
        later (the data runs up to UPDATED_TO, which may be after the clock). `head`: below every existing id."""
        seconds = [int(r["id"][:8], 16) for records in [*self.resources.values(), *self.kobjects.values()] for r in records]
        if head:
            self._heads = getattr(self, "_heads", 0) + 1
            return [f"{min(seconds, default=2) - self._heads:08x}{self._machine:010x}{n:06x}" for n in range(count)]
        second = max(parse_stamp(stamp) // 1_000_000, max(seconds, default=0) + 1)
        return [f"{second:08x}{self._machine:010x}{n:06x}" for n in range(count)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive like the real API; every response sets Content-Length
    disable_nagle_algorithm = True  # otherwise Nagle + delayed ACK stall each response by ~40 ms

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _handle(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}  # repeated key: first wins
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""  # always drain it, so the kept-alive connection stays in sync
        fake = self.server.fake
        with fake._lock:
            fake.stats.in_flight += 1
            fake.stats.most_in_flight = max(fake.stats.most_in_flight, fake.stats.in_flight)
        try:
            reply = fake.serve(self.command, url.path, query, self.headers.get("Authorization"), body, url.query)
        finally:
            with fake._lock:
                fake.stats.in_flight -= 1
        if reply.reset:
            # Linger 0 makes close() send a RST rather than a FIN: the client sees a connection reset by peer.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body[:reply.cut])
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first, e.g. its read timed out
            self.close_connection = True
        if reply.cut is not None:
            self.close_connection = True  # the client waits for the rest of Content-Length until the socket closes

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class FakeKustomer:
    """Serves a Dataset over HTTP. `handle()` is plain Python, so tests can also call it without a socket.

    `now`: the server's clock, an aware datetime (tests may reassign `fake.now` to move time) or None for the real
    time, read at every request. It also becomes the dataset's clock, so mutations default to the same now.
    `search_page_cap`: the last search page served (Kustomer: 100); tests lower it to reach it with little data.
    `faults`: see Faults; `fake.faults` can be reassigned or edited while serving. Rate-limit windows (and the
    log's `at`) use `fake.wall`, epoch seconds from time.time, not `now`; tests may replace it to place requests in
    windows without waiting.
    """

    def __init__(self, dataset: Dataset | None = None, host: str = "127.0.0.1", port: int = 0,
                 now: datetime | None = None, search_page_cap: int = 100, faults: Faults | None = None):
        if now is not None and now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        self.dataset = dataset or Dataset()
        self.now, self.search_page_cap = now, search_page_cap
        self.wall = time.time
        self.dataset.clock = self.clock
        self.host, self.port = host, port
        self.requests_log: list[dict] = []
        self._lock = threading.Lock()  # the log, the fault RNG and the stats (rate-limit windows included)
        self.faults = faults
        self.stats = Stats()
        # Called with (list name, page) before a GET list page is served: tests change the data mid-read with it.
        self.on_list: Callable[[str, int], None] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        ds, lists = self.dataset, "|".join(STREAM_TYPES)
        # The one routing table: (method, full-path regex, handler(query, *groups, body=...) -> (status, body)).
        # Order matters: `current` before ids; `/v1/klasses/<24 hex>` is a klass by id, any other name its kobjects.
        self.routes = [
            ("GET", r"/v1/auth/tokens/current", lambda q, body: (200, {"data": ds.auth_token})),
            ("GET", r"/v1/users/current/?", lambda q, body: (200, {"data": ds.machine_user})),
            ("GET", r"/v1/orgs/current", lambda q, body: (200, {"data": ds.org})),
            ("GET", rf"/v1/({lists})", lambda q, s, body: self._list(q, f"/v1/{s}", ds.resources[s], s)),
            ("GET", rf"/v1/({lists})/([0-9a-f]{{24}})", lambda q, s, id_, body: self._find(ds.resources[s], id_)),
            ("GET", r"/v1/klasses/([^/]+)", lambda q, k, body: self._list(q, f"/v1/klasses/{k}", ds.kobjects.get(k), k)),
            ("GET", r"/v1/klasses/([^/]+)/([0-9a-f]{24})", lambda q, k, id_, body: self._find(ds.kobjects.get(k), id_)),
            ("GET", r"/v1/conversations/([0-9a-f]{24})/times", lambda q, id_, body: self._times(q, id_)),
            ("GET", r"/v1/conversations/([0-9a-f]{24})/(events|forwards)",
             lambda q, id_, kind, body: self._of_conversation(q, id_, kind)),
            ("GET", r"/v1/metadata/(customer|conversation|message|company|kobject\.[^/]+)",
             lambda q, resource, body: (200, {"data": found}) if (found := ds.metadata(resource))
             else (404, NOT_FOUND)),
            ("GET", r"/v1/audit-logs", lambda q, body: self._audit_logs(q)),
            ("POST", r"/v1/customers/search", lambda q, body: self._search(q, body, "/v1/customers/search", False)),
            ("POST", r"/v1/customers/archive/search",
             lambda q, body: self._search(q, body, "/v1/customers/archive/search", True)),
        ]

    def clock(self) -> datetime:
        return self.now or datetime.now(timezone.utc)

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        with self._lock:
            self._faults = faults or Faults()
            self._rng = random.Random(self._faults.seed)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "FakeKustomer":
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self.port = self._server.server_address[1]  # the real port when asked for port 0
        # A short poll interval makes stop() (shutdown waits for the next poll) quick; tests start many servers.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-kustomer",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def serve_until_interrupted(self) -> None:
        """For command-line servers: block until Ctrl-C (or SIGTERM's KeyboardInterrupt), then stop."""
        try:
            self._thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> "FakeKustomer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def handle(self, method: str, path: str, query: dict[str, str], authorization: str | None, body: bytes = b""):
        """(status, JSON body) for one request: log, authenticate, route. This is the API without its transport:
        the refusals and off_host_next apply, but no latency, faults, rate limits or redirects (see serve())."""
        entry = self._log(method, path, query, authorization, body)
        entry["status"], payload = self._answer(method, path, query, authorization, body)
        return entry["status"], payload

    def serve(self, method: str, path: str, query: dict[str, str], authorization: str | None, body: bytes = b"",
              raw_query: str = "") -> Reply:
        """One HTTP request, faults included: what handle() answers, plus latency, faults, rate limiting, redirects
        and the rate-limit and pod headers. Plain Python like handle(), but it sleeps for latency and slow requests."""
        entry = self._log(method, path, query, authorization, body)
        faults, api = self._faults, path.startswith("/v1/")
        with self._lock:
            self.stats.requests += 1
            # Always three draws per /v1 request, whatever is switched on: the n-th request meets the same luck
            # whichever rates and kinds are set, so changing one setting does not reshuffle the others.
            slow, fault = False, None
            if api:
                slow_draw, fault_draw, kind_draw = (self._rng.random() for _ in range(3))
                slow = slow_draw < faults.slow_rate
                if fault_draw < faults.error_rate:
                    fault = faults.error_kinds[int(kind_draw * len(faults.error_kinds))]
            self.stats.slow += slow
            if fault:
                self.stats.faults[fault] += 1
        if faults.latency or slow:
            time.sleep(faults.latency + (faults.slow_seconds if slow else 0))
        if fault:  # answered before the API sees the request: no state changes and the rate limiter never counts it
            entry["fault"] = fault
            headers, _ = self._rate_limit(counted=False, search=False)
            if fault == "reset":
                return Reply(0, headers, reset=True)
            if fault in CANNED:
                entry["status"], content_type, payload = CANNED[fault]
                return Reply(entry["status"], headers | {"Content-Type": content_type},
                             payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
            entry["status"], payload = self._answer(method, path, query, authorization, body)  # "truncated"
            data = json.dumps(payload).encode()
            return Reply(entry["status"], headers | {"Content-Type": JSON_TYPE}, data, cut=len(data) // 2)

        headers, refused = self._rate_limit(counted=api and entry["authorized"],
                                            search=method == "POST" and path in SEARCH_PATHS)
        if refused:
            entry["status"] = 429
            return Reply(429, headers | {"Content-Type": JSON_TYPE}, json.dumps(TOO_MANY).encode())
        if entry["authorized"] and list_name(method, path) in faults.redirect:
            entry["status"] = 302  # e.g. an org moved to another pod, or a misconfigured proxy
            return Reply(302, headers | {"Location": ELSEWHERE + path + ("?" + raw_query if raw_query else "")})
        entry["status"], payload = self._answer(method, path, query, authorization, body)
        return Reply(entry["status"], headers | {"Content-Type": JSON_TYPE}, json.dumps(payload).encode())

    def _rate_limit(self, counted: bool, search: bool) -> tuple[dict[str, str], bool]:
        """(X-Ratelimit-* and pod headers, refused) for a request, counted in its window when `counted` (an authorized
        /v1 request) and within the limits. A refused request (a 429) is not counted."""
        faults, now = self._faults, self.wall()
        with self._lock:
            windows, width = self.stats.windows, faults.rate_window
            if faults.window_start == "clock":
                start = math.floor(now / width) * width  # the same k gives the same float: a plain != is safe
                if not windows or windows[-1].start != start:
                    windows.append(Window(start, others=faults.others_per_window))
            elif not windows or now >= windows[-1].start + width:
                windows.append(Window(now, others=faults.others_per_window))
            window = windows[-1]
            limit = DEFAULT_RATE_LIMIT if faults.rate_limit is None else faults.rate_limit
            refused = None  # the limit that refused the request, reported as the 429's X-Ratelimit-Limit
            if counted and faults.rate_limit is not None and window.others + window.served >= faults.rate_limit:
                refused = faults.rate_limit
            elif counted and search and faults.search_rate_limit is not None \
                    and window.searches >= faults.search_rate_limit:
                refused = faults.search_rate_limit
            elif counted:
                window.served += 1
                window.searches += search
            self.stats.rate_limited += refused is not None
            left = 0 if refused is not None else max(0, limit - window.others - window.served)
            headers = {"X-Ratelimit-Limit": str(limit if refused is None else refused),  # capitalised as recorded
                       "X-Ratelimit-Remaining": str(left)} | POD_HEADERS
            end = window.start + width
            # Rounded up: a client that waits until the reset must find the new window open.
            if faults.reset_header == "epoch" or (faults.reset_header == "on_429" and refused is not None):
                headers["X-Ratelimit-Reset"] = str(math.ceil(end))
            elif faults.reset_header == "delta":
                headers["X-Ratelimit-Reset"] = str(math.ceil(end - now))
            return headers, refused is not None

    def _log(self, method: str, path: str, query: dict[str, str], authorization: str | None, body: bytes) -> dict:
        """A requests_log entry; the caller adds "status" (the answer; none for a reset) and "fault" (its kind)."""
        entry = {"method": method, "path": path, "query": dict(query),
                 "authorized": authorization == f"Bearer {API_KEY}", "at": self.wall()}  # like the windows
        if body:  # search: the criteria are in the body, so tests need it to see what was asked
            try:
                entry["body"] = json.loads(body)
            except ValueError:
                entry["body"] = body.decode("utf-8", "replace")
        with self._lock:  # never log the token itself
            self.requests_log.append(entry)
        return entry

    def _answer(self, method: str, path: str, query: dict[str, str], authorization: str | None, body: bytes):
        """(status, JSON body): authenticate, apply the refusals (forbidden, missing, bad_param in that order), route,
        apply off_host_next."""
        if not path.startswith("/v1/"):
            return 404, NOT_FOUND
        if authorization == f"Bearer {WRONG_REGION_KEY}":
            return 401, error_body(401, "unauthorized", "Unauthorized",
                                   "Auth token associated with pod prod2 but request is being handled by prod1")
        if authorization != f"Bearer {API_KEY}":
            return 401, UNAUTHORIZED
        name, faults = list_name(method, path), self._faults
        if name in faults.forbidden and faults.refusal_status == 401:
            return 401, UNAUTHORIZED  # "401 ... the result of a missing role, invalid auth token, or billing feature"
        if name in faults.forbidden:
            role = {"search": "search.create", "metadata": "metadata.read", "audit-logs": "audit_logs.read",
                    "conversation-times": "conversation.read", "conversation-events": "event.read",
                    "conversation-forwards": "draft.read"}.get(name) or f"{STREAM_TYPES.get(name, 'kobject')}.read"
            return 403, error_body(403, "forbidden", "Forbidden", f"Missing role org.permission.{role}")
        if name in faults.missing:
            return 404, NOT_FOUND
        if name in faults.bad_param:
            parameter = next(iter(query), "page")  # the recorded 400 names what it refused
            return 400, error_body(400, "badparam", "Bad Request", f"Invalid value for {parameter}", parameter)
        matches = [(m, handler) for verb, pattern, handler in self.routes
                   if (m := re.fullmatch(pattern, path)) and verb == method]
        if matches:
            m, handler = matches[0]
            try:
                status, payload = handler(query, *m.groups(), body=body)
            except BadRequest as bad:
                return 400, bad.body
            if name in faults.off_host_next and status == 200 and payload.get("links", {}).get("next"):
                payload["links"]["next"] = ELSEWHERE + payload["links"]["next"]  # a fresh dict per response
            return status, payload
        if any(re.fullmatch(pattern, path) for _, pattern, _ in self.routes):
            return 405, error_body(405, "method_not_allowed", "Method Not Allowed", f"{method} {path} is not supported")
        return 404, NOT_FOUND

    @staticmethod
    def _find(records: list[dict] | None, id_: str):
        found = next((r for r in records or [] if r["id"] == id_), None)
        return (200, {"data": found}) if found else (404, NOT_FOUND)

    @staticmethod
    def _paging(query: dict[str, str], max_size: int) -> tuple[int, int]:
        params = {}
        for name, default in (("page", 1), ("pageSize", DEFAULT_PAGE_SIZE)):
            raw = query.get(name, str(default)).strip()
            if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
                raise BadRequest(f"{name} must be a positive integer", name)
            params[name] = int(raw)
        return params["page"], min(params["pageSize"], max_size)  # silently clamped

    def _list(self, query: dict[str, str], path: str, records: list[dict] | None, stream: str):
        if records is None:  # unknown klass name
            return 404, NOT_FOUND
        page, size = self._paging(query, MAX_PAGE_SIZE.get(stream, 100))
        if self.on_list is not None:
            self.on_list(stream, page)
        ordered = self.dataset.by_id(records)  # re-sorted after mutations (and appends by hand) only
        start = (page - 1) * size

        def link(p: int) -> str:  # relative, like the real API
            return f"{path}?page={p}&pageSize={size}"

        meta = {"pageSize": size, "page": page}
        if stream == "customers":  # the only GET list that reports totals
            meta |= {"total": len(ordered), "totalPages": -(-len(ordered) // size)}
        links = {"self": link(page), "first": link(1), "prev": link(page - 1) if page > 1 else None,
                 "next": link(page + 1) if start + size < len(ordered) else None}
        return 200, {"meta": meta, "links": links, "data": ordered[start:start + size]}

    def _times(self, query: dict[str, str], id_: str):
        conversation = next((c for c in self.dataset.resources["conversations"] if c["id"] == id_), None)
        if conversation is None:  # hard-deleted, or never existed
            return 404, NOT_FOUND
        path = f"/v1/conversations/{id_}/times"
        return self._list(query, path, self.dataset.conversation_times(conversation), "conversation-times")

    def _of_conversation(self, query: dict[str, str], id_: str, kind: str):
        """GET /v1/conversations/<id>/events or /forwards: 404 once the conversation is gone, like its times."""
        conversation = next((c for c in self.dataset.resources["conversations"] if c["id"] == id_), None)
        if conversation is None:
            return 404, NOT_FOUND
        made = self.dataset.conversation_events if kind == "events" else self.dataset.conversation_forwards
        return self._list(query, f"/v1/conversations/{id_}/{kind}", made(conversation), f"conversation-{kind}")

    def _audit_logs(self, query: dict[str, str]):
        """Newest first, `count` (default 100, at most 1,000) per page; `links.next` asks for those `before` the
        page's last id. Filters: filter[objectType] (+ filter[include], more types), filter[start] / filter[end]."""
        raw = query.get("count", "100")
        if not raw.isdigit() or int(raw) < 1:
            raise BadRequest("count must be a positive integer", "count")
        count = min(int(raw), 1000)
        types = {t for t in [query.get("filter[objectType]"), *query.get("filter[include]", "").split(",")] if t}
        keys = ("filter[start]", "filter[end]")
        bounds = [parse_stamp(query[k]) if query.get(k) else None for k in keys]
        if bad := next((k for k, b in zip(keys, bounds) if query.get(k) and b is None), None):
            raise BadRequest(f"{bad} must be an ISO 8601 timestamp", bad)
        with self.dataset.lock:
            entries = sorted(self.dataset.audit_logs, key=lambda e: (e["attributes"]["createdAt"], e["id"]), reverse=True)
        entries = [e for e in entries if (not types or e["attributes"]["objectType"] in types)
                   and (bounds[0] is None or parse_stamp(e["attributes"]["createdAt"]) >= bounds[0])
                   and (bounds[1] is None or parse_stamp(e["attributes"]["createdAt"]) <= bounds[1])]
        if before := query.get("before"):
            ids = [e["id"] for e in entries]
            entries = entries[ids.index(before) + 1:] if before in ids else []
        page = entries[:count]
        kept = "&".join(f"{k}={v}" for k, v in query.items() if k.startswith("filter["))
        link = f"/v1/audit-logs?count={count}" + (f"&{kept}" if kept else "")
        links = {"self": link, "first": link,
                 "next": f"{link}&before={page[-1]['id']}" if len(entries) > count else None}
        return 200, {"meta": {"count": len(page), "total": len(entries)}, "links": links, "data": page}

    def _search(self, query: dict[str, str], body: bytes, path: str, archive: bool):
        page, size = self._paging(query, MAX_SEARCH_PAGE_SIZE)
        if page > self.search_page_cap:  # page `cap` still links to page cap + 1; only fetching it fails
            raise BadRequest(f"Search is limited to {self.search_page_cap} pages; narrow the query", "page")
        try:
            spec = json.loads(body or b"{}")
        except ValueError:
            spec = None
        if not isinstance(spec, dict):
            raise BadRequest("The request body must be a JSON object", "body")
        stream, prefix = self._search_context(spec.get("queryContext"))
        attributes = {f"{prefix}_updated_at": "updatedAt", f"{prefix}_created_at": "createdAt"}
        sort_attr, desc = self._search_sort(spec.get("sort"), attributes)
        bounds, ids = self._search_criteria(spec.get("and"), attributes, f"{prefix}_id")
        horizon = micros(self.clock() - SEARCH_HORIZON)  # read per request: a long test sees records age out
        lo, hi = bounds["updatedAt"]
        bounds["updatedAt"] = (lo, min(hi, horizon - 1)) if archive else (max(lo, horizon), hi)

        index = self.dataset.index(stream, sort_attr, desc, spec.get("includeDeleted") is True)
        start, end = index.window(*bounds.pop(sort_attr))
        checks = [lambda r, a=a, low=low, high=high: low <= stamp_of(r, a) <= high
                  for a, (low, high) in bounds.items() if (low, high) != (-math.inf, math.inf)]
        if ids is not None:
            checks.append(lambda r: r["id"] in ids)
        offset = (page - 1) * size
        if checks:  # a filter the index does not order by: scan the indexed range
            matched = [r for r in index.records[start:end] if all(check(r) for check in checks)]
            total, data = len(matched), matched[offset:offset + size]
        else:  # the common keyset query: no scan, just a slice
            total, data = end - start, index.records[start + offset:min(start + offset + size, end)]

        def link(p: int) -> str:
            return f"{path}?page={p}&pageSize={size}"

        pages = -(-total // size)  # the full count, even past the page cap, as Kustomer reports it
        meta = {"pageSize": size, "page": page, "total": total, "totalPages": pages, "aggregations": {}}
        links = {"self": link(page), "first": link(1), "prev": link(page - 1) if page > 1 else None,
                 "next": link(page + 1) if offset + size < total else None, "last": link(max(pages, 1))}
        return 200, {"meta": meta, "links": links, "data": data}

    def _search_context(self, context) -> tuple[str, str]:
        """(Dataset stream key, attribute prefix) of a queryContext."""
        if context in SEARCH_CONTEXTS:
            return SEARCH_CONTEXTS[context], context
        if context == "kobject":
            return "kobjects", "kobject"
        klass = context.removeprefix("kobject_") if isinstance(context, str) and context.startswith("kobject_") else None
        if klass in self.dataset.kobjects:
            return f"kobject.{klass}", "kobject"
        detail = "queryContext is required" if context is None else f"Unknown queryContext {json.dumps(context)}"
        raise BadRequest(detail, "queryContext")

    @staticmethod
    def _search_sort(sort, attributes: dict[str, str]) -> tuple[str, bool]:
        """(attribute, descending) of the first sort key: the real API is reported to apply only the first."""
        sort = [sort] if isinstance(sort, dict) else sort or []
        if not isinstance(sort, list) or not all(isinstance(key, dict) and len(key) == 1 for key in sort):
            raise BadRequest('sort must be a list of {"<attribute>": "asc" | "desc"}', "sort")
        if not sort:
            return "updatedAt", False
        [(name, direction)] = sort[0].items()
        if name not in attributes:
            raise BadRequest(f"Unknown sort attribute '{name}'", name)
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Sort direction of '{name}' must be asc or desc", name)
        return attributes[name], direction == "desc"

    @staticmethod
    def _search_criteria(criteria, attributes: dict[str, str], id_attr: str):
        """Inclusive epoch-microsecond bounds per timestamp attribute, and the wanted ids (None: any)."""
        criteria = [{k: v} for k, v in criteria.items()] if isinstance(criteria, dict) else criteria or []
        if not isinstance(criteria, list):
            raise BadRequest("and must be a list of criteria", "and")
        bounds = {attr: (-math.inf, math.inf) for attr in attributes.values()}
        ids = None
        for criterion in criteria:
            if not isinstance(criterion, dict):
                raise BadRequest('Each criterion must be {"<attribute>": {"<operator>": value}}', "and")
            for name, condition in criterion.items():
                if name in ("and", "or", "not"):  # nested groups are not evaluated (see the module docstring)
                    continue
                if name not in attributes and name != id_attr:
                    raise BadRequest(f"Unknown search attribute '{name}'", name)
                if not isinstance(condition, dict) or not condition:
                    raise BadRequest(f"'{name}' needs an operator, as in {{\"{name}\": {{\"gte\": ...}}}}", name)
                for op, value in condition.items():
                    if name == id_attr:
                        values = [value] if op == "equals" else value if op == "in" else None
                        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                            raise BadRequest(f"'{name}' supports equals (an id) and in (a list of ids), not '{op}'",
                                             name)
                        ids = set(values) if ids is None else ids & set(values)
                        continue
                    if op not in TIME_OPERATORS:
                        raise BadRequest(f"Unknown operator '{op}' for '{name}' (use {', '.join(TIME_OPERATORS)})",
                                         name)
                    if (t := parse_stamp(value)) is None:
                        raise BadRequest(f"'{name}' {op} needs a timestamp like 2024-01-31T00:00:00.000Z or "
                                         f"2024-01-31, not {json.dumps(value)}", name)
                    lo, hi = bounds[attributes[name]]
                    if op in ("gte", "gt", "equals"):
                        lo = max(lo, t + (op == "gt"))  # integer microseconds: gt t is gte t + 1
                    if op in ("lte", "lt", "equals"):
                        hi = min(hi, t - (op == "lt"))
                    bounds[attributes[name]] = lo, hi
        return bounds, ids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Kustomer API until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8585)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the record counts of the big streams")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered with a fault")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every answer")
    parser.add_argument("--rate-limit", type=int, help="requests per window before 429s (default: not enforced)")
    parser.add_argument("--rate-window", type=float, default=60.0, help="seconds per rate-limit window")
    parser.add_argument("--window-start", choices=WINDOW_STARTS, default="clock",
                        help="clock: fixed windows of the clock (default); request: opened by the first request")
    parser.add_argument("--others-per-window", type=int, default=0,
                        help="requests of the org's other users counted into each window")
    parser.add_argument("--reset-header", choices=RESET_HEADERS, default="none",
                        help="X-Ratelimit-Reset: never (default, as recorded), epoch or delta on every response, "
                             "or epoch on 429s only")
    parser.add_argument("--forbidden", default="", help="comma-separated lists the key lacks the role for")
    parser.add_argument("--refusal-status", type=int, choices=(401, 403), default=401,
                        help="how --forbidden lists are refused (default 401, like a bad key)")
    parser.add_argument("--missing", default="", help="comma-separated lists answered 404 notfound")
    args = parser.parse_args(argv)
    names = {name: [n for n in getattr(args, name).split(",") if n] for name in ("forbidden", "missing")}
    try:  # an unknown list name is a usage error, not a traceback
        faults = Faults(error_rate=args.error_rate, latency=args.latency, rate_limit=args.rate_limit,
                        rate_window=args.rate_window, window_start=args.window_start,
                        others_per_window=args.others_per_window, reset_header=args.reset_header,
                        refusal_status=args.refusal_status, **names)
    except ValueError as error:
        parser.error(str(error))
    fake = FakeKustomer(Dataset(scaled_sizes(args.scale), seed=args.seed), host=args.host, port=args.port,
                        faults=faults).start()
    print(f"fake Kustomer API at {fake.url} (api key: {API_KEY})", flush=True)
    fake.serve_until_interrupted()


if __name__ == "__main__":
    main()
