"""FakeKustomer: the server. Routing, authentication and the refusals (handle()), the transport faults, rate limits
and redirects on top (serve()), the GET lists, and its clock."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer
from typing import Callable

from .data import Dataset
from .faults import CANNED, Faults
from .rate_limits import TOO_MANY, Stats, account
from .search import search
from .transport import Reply, _Handler
from .wire import (API_KEY, ELSEWHERE, JSON_TYPE, MAX_PAGE_SIZE, NOT_FOUND, SEARCH_PATHS, STREAM_TYPES, UNAUTHORIZED,
                   WRONG_REGION_KEY, BadRequest, error_body, included_names, list_name, next_link, paging,
                   parse_stamp)

# The role a 403 names when Faults.refusal_status is 403 (default: org.permission.<type>.read).
ROLES = {"search": "search.create", "metadata": "metadata.read", "audit-logs": "audit_logs.read",
         "conversation-times": "conversation.read", "conversation-events": "event.read",
         "conversation-forwards": "draft.read", "routing/work-items": "routing.read",
         "routing/statuses": "routing_status.read", "kb/articles": "kb.read", "kb/categories": "kb.read",
         "attachments": "attachment.read", "holidays": "schedule.read"}


class FakeKustomer:
    """Serves a Dataset over HTTP. `handle()` is plain Python, so tests can also call it without a socket.

    `now`: the server's clock, an aware datetime (tests may reassign `fake.now`, or call advance(), to move time)
    or None for the real time, read at every request. It also becomes the dataset's clock, so mutations default to
    the same now.
    `search_page_cap`: the last search page served (Kustomer: 100); tests lower it to reach it with little data.
    Faults.search_window, when set, replaces it.
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
            ("GET", r"/v1/routing/work-sessions", lambda q, body: self._work_sessions(q)),
            ("GET", r"/v1/messages", lambda q, body: self._messages(q)),
            ("GET", r"/v1/slas/([0-9a-f]{24})", lambda q, id_, body: self._sla(q, id_)),
            ("GET", r"/v1/schedules/([0-9a-f]{24}|default)", lambda q, id_, body: self._schedule(q, id_)),
            ("GET", r"/v1/conversations/([0-9a-f]{24})/attachments", lambda q, id_, body: self._attachments(q, id_)),
            ("GET", r"/v1/messages/([0-9a-f]{24})/attachments/([0-9a-f]{24})",
             lambda q, id_, attachment, body: self._attachment(id_, attachment)),
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

    def advance(self, seconds: float) -> datetime:
        """Move the server's clock `seconds` on (back if negative) and return the new now; a clock that followed
        the real time stops there first. Search reads the clock per request (its two-year horizon, index_lag), so
        a test moves time between syncs with this, or by assigning `fake.now`."""
        self.now = self.clock() + timedelta(seconds=seconds)
        return self.now

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        with self._lock:
            self._faults = faults or Faults()
            self._rng = random.Random(self._faults.seed)
            self._timeouts = random.Random(f"{self._faults.seed}/timed_out")  # search's own: see _search

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
        the refusals, off_host_next and search's options (search_window, timed_out_rate, index_lag,
        refuse_contexts) apply, but no latency, faults, rate limits or redirects (see serve())."""
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
        """(X-Ratelimit-* and pod headers, refused) for a request: see rate_limits.account()."""
        faults, now = self._faults, self.wall()
        with self._lock:
            return account(self.stats, faults, now, counted, search)

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
        # A list asked to include another (attachments, holidays) is refused if either is: a key without the role.
        names = [name, *sorted(included_names(method, path, query))]
        if refused := next((n for n in names if n in faults.forbidden), None):
            if faults.refusal_status == 401:
                return 401, UNAUTHORIZED  # "401 ... the result of a missing role, invalid auth token, or billing feature"
            role = ROLES.get(refused) or f"{STREAM_TYPES.get(refused, 'kobject')}.read"
            return 403, error_body(403, "forbidden", "Forbidden", f"Missing role org.permission.{role}")
        if any(n in faults.missing for n in names):
            return 404, NOT_FOUND
        if any(n in faults.bad_param for n in names):
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

    def _list(self, query: dict[str, str], path: str, records: list[dict] | None, stream: str,
              in_order: bool = False):
        """A GET list page; `in_order`: the records are already in the order to serve (made for this request)."""
        if records is None:  # unknown klass name
            return 404, NOT_FOUND
        page, size = paging(query, MAX_PAGE_SIZE.get(stream, 100))
        if self.on_list is not None:
            self.on_list(stream, page)
        # Re-sorted after mutations (and appends by hand) only.
        ordered = records if in_order else self.dataset.by_id(records)
        start = (page - 1) * size

        def link(p: int) -> str:  # relative, like the real API, echoing the request's other parameters first
            return next_link(path, query, p, size)

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

    def _work_sessions(self, query: dict[str, str]):
        """GET /v1/routing/work-sessions with Kustomer's documented filters: `active=true` only open sessions,
        `statusType=<type>` only sessions whose current status is of that type, `user=true` only the current user's
        (the machine user behind the key: none). `false` (or no parameter) keeps all."""
        sessions = self.dataset.resources["routing/work-sessions"]
        flags = {}
        for name in ("active", "user"):
            if name in query:
                if query[name] not in ("true", "false"):
                    raise BadRequest(f"{name} must be true or false", name)
                flags[name] = query[name] == "true"
        if "statusType" in query and query["statusType"] not in ("available", "busy", "unavailable", "offline"):
            raise BadRequest("statusType must be one of available, busy, unavailable, offline", "statusType")
        if flags.get("active") or flags.get("user") or "statusType" in query:
            me = self.dataset.machine_user["id"]
            sessions = [s for s in self.dataset.by_id(sessions)
                        if (not flags.get("active") or s["attributes"]["active"])
                        and (not flags.get("user") or s["relationships"]["user"]["data"]["id"] == me)
                        and query.get("statusType", s["attributes"]["statusType"]) == s["attributes"]["statusType"]]
        return self._list(query, "/v1/routing/work-sessions", sessions, "routing/work-sessions",
                          in_order=sessions is not self.dataset.resources["routing/work-sessions"])

    def _messages(self, query: dict[str, str]):
        """GET /v1/messages; with include=attachments each page also has `included` (the attachments of its
        messages) and those messages a relationships.attachments. Without it, the plain list."""
        status, payload = self._list(query, "/v1/messages", self.dataset.resources["messages"], "messages")
        if status == 200 and "attachments" in query.get("include", "").split(","):
            payload["data"], payload["included"] = self.dataset.with_attachments(payload["data"])
        return status, payload

    def _sla(self, query: dict[str, str], id_: str):
        """GET /v1/slas/<id>; `versions=all` adds `included`: every version, an array when there are several and a
        single object when there is one (Kustomer's example and schema show an object); `versions=active` the
        current version, an object."""
        status, payload = self._find(self.dataset.resources["slas"], id_)
        versions = query.get("versions")
        if versions is not None and versions not in ("all", "active"):
            raise BadRequest("versions must be one of all, active", "versions")
        if status == 200 and versions:
            made = self.dataset.sla_versions.get(id_, [])
            current = payload["data"]["attributes"]["currentVersion"]
            if versions == "active":
                made = [v for v in made if v["attributes"]["version"] == current][-1:]
            if made:
                payload = payload | {"included": made if len(made) > 1 else made[0]}
        return status, payload

    def _schedule(self, query: dict[str, str], id_: str):
        """GET /v1/schedules/<id> or /v1/schedules/default; include=holidays adds `included`: the schedule's
        holidays (an array, maybe empty). The list ignores `include`, which Kustomer does not document there."""
        schedules = self.dataset.resources["schedules"]
        if id_ == "default":
            found = next((s for s in schedules if s["attributes"].get("default")), None)
            status, payload = (200, {"data": found}) if found else (404, NOT_FOUND)
        else:
            status, payload = self._find(schedules, id_)
        include = query.get("include")
        if include is not None and include != "holidays":
            raise BadRequest("include accepts holidays", "include")
        if status == 200 and include:
            payload = payload | {"included": list(self.dataset.holidays.get(payload["data"]["id"], []))}
        return status, payload

    def _attachments(self, query: dict[str, str], id_: str):
        """GET /v1/conversations/<id>/attachments: the attachments of its messages, in the messages' id order."""
        if not any(c["id"] == id_ for c in self.dataset.resources["conversations"]):
            return 404, NOT_FOUND
        messages = [m for m in self.dataset.by_id(self.dataset.resources["messages"])
                    if m["relationships"]["conversation"]["data"]["id"] == id_]
        attachments = [a for m in messages for a in self.dataset.message_attachments(m)]
        return self._list(query, f"/v1/conversations/{id_}/attachments", attachments, "attachments", in_order=True)

    def _attachment(self, message_id: str, id_: str):
        """GET /v1/messages/<id>/attachments/<id>: one attachment of a message."""
        message = next((m for m in self.dataset.resources["messages"] if m["id"] == message_id), None)
        return self._find(self.dataset.message_attachments(message) if message else [], id_)

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
        """A search page (see search.py). Every search that gets this far draws once for timed_out_rate, from a
        generator of its own: the three draws of serve() stay as they were whatever the search settings."""
        with self._lock:
            timed_out = self._timeouts.random() < self._faults.timed_out_rate
        status, payload = search(self.dataset, query, body, path, archive, now=self.clock(),
                                 page_cap=self.search_page_cap, faults=self._faults, timed_out=timed_out)
        if status == 200 and "attachments" in query.get("include", "").split(",") \
                and json.loads(body or b"{}").get("queryContext") == "message":
            payload["data"], payload["included"] = self.dataset.with_attachments(payload["data"])
        return status, payload
