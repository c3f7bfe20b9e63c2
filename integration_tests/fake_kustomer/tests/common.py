"""What the fake's tests share: the key, the clock they fix, and requests through handle() and serve()."""

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

from integration_tests.fake_kustomer import API_KEY, DEFAULT_SIZES

AUTH = {"Authorization": f"Bearer {API_KEY}"}

NOW = datetime(2026, 10, 15, tzinfo=timezone.utc)
HORIZON = NOW - timedelta(days=730)  # 2024-10-15: search sees updatedAt >= this, archive search the rest
STREAM_OF = {"customer": "customers", "conversation": "conversations", "message": "messages", "note": "notes",
             "company": "companies"}
CUSTOMER_BURST = "2026-09-23T13:50:57.343Z"  # 30 customers share this updatedAt in the default dataset
SMALL = {k: 5 for k in DEFAULT_SIZES}  # fault tests need a few pages, not realistic volumes
RATE_HEADERS = ("X-Ratelimit-Limit", "X-Ratelimit-Remaining")  # on every recorded response, capitalised so
RECORDED = {"X-Kustomer-Pod": "prod1", "Cache-Control": "no-cache,private"}  # also on every recorded response
NEVER = ("X-Ratelimit-Reset", "Retry-After")  # on none of them
MINUTE = 1_800_000_000.0  # epoch seconds at the start of a minute of the clock (a multiple of 60)


def instant(stamp: str) -> datetime:
    """An oracle independent of the fake's parser: both `...Z` timestamps and bare dates, as UTC instants."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00") if "T" in stamp else stamp + "T00:00:00+00:00")


def updated(record) -> datetime:
    return instant(record["attributes"]["updatedAt"])


def in_order(records) -> list[str]:
    return [r["id"] for r in sorted(records, key=lambda r: (updated(r), r["id"]))]


def search(fake, body, page=None, page_size=None, archive=False):
    """(status, body) of one search request, through handle(): no socket needed."""
    query = {name: str(v) for name, v in (("page", page), ("pageSize", page_size)) if v is not None}
    path = "/v1/customers/archive/search" if archive else "/v1/customers/search"
    return fake.handle("POST", path, query, AUTH["Authorization"], json.dumps(body).encode())


def search_all(fake, body, page_size=500, archive=False) -> list[dict]:
    """Every page, following links.next and POSTing the same body again (the links carry only page/pageSize)."""
    records, link = [], ("/v1/customers/archive/search" if archive else "/v1/customers/search") + f"?pageSize={page_size}"
    while link:
        url = urlsplit(link)
        status, payload = fake.handle("POST", url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                                      AUTH["Authorization"], json.dumps(body).encode())
        assert status == 200, payload
        records += payload["data"]
        link = payload["links"]["next"]
    return records


def get(fake, path):
    return fake.handle("GET", path, {}, AUTH["Authorization"])


def listed(fake, path) -> list[str]:
    """Ids of a whole GET list, through handle()."""
    ids, link = [], path
    while link:
        url = urlsplit(link)
        status, page = fake.handle("GET", url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                                   AUTH["Authorization"])
        assert status == 200, page
        ids += [r["id"] for r in page["data"]]
        link = page["links"]["next"]
    return ids


def fetch_all(http, url, path):
    """Follow links.next (relative paths) to the end, like a connector would."""
    pages, next_path = [], path
    while next_path:
        response = http.get(url + next_path)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_path = pages[-1]["links"]["next"]
    return pages


def call(fake, method, path, body=None, authorization=AUTH["Authorization"]):
    """serve() without a socket: the same faults, rate limits and headers as over HTTP."""
    url = urlsplit(path)
    return fake.serve(method, url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, authorization,
                      b"" if body is None else json.dumps(body).encode(), url.query)
