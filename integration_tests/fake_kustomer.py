"""A small fake of the Kustomer REST API (v1) for integration tests.

It mimics the wire behaviour in /work/shared/reference/kustomer-api.md: JSON:API-style envelopes, page/pageSize
pagination with relative `links`, bearer-token auth and Kustomer-shaped error bodies. Standard library only and
deterministic: the same seed and sizes give byte-identical responses.

    python -m integration_tests.fake_kustomer --port 8585 [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_KEY = "test-api-key"
WRONG_REGION_KEY = "wrong-region-key"  # a valid-looking key of an org that lives on another pod

# Record counts; each `kobject.<klassName>` key defines one klass and how many kobjects it holds.
DEFAULT_SIZES: dict[str, int] = {
    "customers": 250, "companies": 120, "conversations": 300, "messages": 650, "notes": 180, "users": 520,
    "teams": 15, "tags": 140, "brands": 3, "shortcuts": 110,
    "kobject.order": 230, "kobject.subscription": 40, "kobject.return-request": 0,
}
UNSCALED = {"teams", "brands"}  # configuration-like streams keep their size under --scale

STREAM_TYPES = {  # list endpoint (URL plural) -> JSON:API type
    "customers": "customer", "conversations": "conversation", "messages": "message", "notes": "note",
    "users": "user", "teams": "team", "tags": "tag", "brands": "brand", "shortcuts": "shortcut",
    "companies": "company", "klasses": "klass",
}
PLURALS = {t: s for s, t in STREAM_TYPES.items()} | {"org": "orgs", "queue": "routing/queues"}
MAX_PAGE_SIZE = {"users": 500, "teams": 500}  # every other list: 100
DEFAULT_PAGE_SIZE = 100

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


def iso(ms: int) -> str:
    """Kustomer's timestamp format: UTC, millisecond precision, `Z`."""
    t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def rel(type_: str, id_: str) -> dict:
    """A to-one relationship with both `links` and `data`."""
    return {"links": {"self": f"/v1/{PLURALS[type_]}/{id_}"}, "data": {"type": type_, "id": id_}}


def error_body(status: int, code: str, title: str, detail: str | None = None, **extra) -> dict:
    return {"errors": [{"status": status, "code": code, "title": title} | ({"detail": detail} if detail else {})
                       | extra]}


def scaled_sizes(scale: float) -> dict[str, int]:
    return {k: v if k in UNSCALED else round(v * scale) for k, v in DEFAULT_SIZES.items()}


class Dataset:
    """Every served record, as plain lists of JSON:API resource dicts (tests may mutate them between syncs)."""

    def __init__(self, sizes: dict[str, int] | None = None, seed: int = 7):
        self.sizes = DEFAULT_SIZES | (sizes or {})  # partial overrides keep the other defaults
        self.seed = seed
        # ObjectId = 4-byte creation second + 5 "machine" bytes + 3-byte counter. One machine value per id family
        # keeps ids unique across streams; the counter keeps same-second ids in creation order.
        self._machine, self._families = random.Random(seed).getrandbits(32) << 8, 0
        self.resources: dict[str, list[dict]] = {}
        self.kobjects: dict[str, list[dict]] = {}
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
        rng, type_ = self._rng(stream), type_ or STREAM_TYPES[stream]
        path = path or f"/v1/{PLURALS[type_]}"
        records = []
        for i, (id_, stamps) in enumerate(self._timeline(rng, self.sizes[stream])):
            attrs, rels = build(rng, i, id_)
            records.append({"type": type_, "id": id_, "attributes": attrs | stamps,
                            "relationships": {"org": rel("org", self.org_id)} | rels,
                            "links": {"self": f"{path}/{id_}"}})
        return records

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
        self.queue_ids = self._ids([ORG_CREATED // 1000] * 4)  # queues are referenced but not served
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
            "domains": [f"company{i}.example"], "emails": [], "phones": [], "tags": [], "rev": rng.randint(1, 9)},
            self._audit(rng, 0.3)))
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
        customers = {c["id"]: c for c in res["customers"]}

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
                    "custom": {"orderNumberStr": f"#{rng.randrange(10**6):06d}", "refundBool": rng.random() < 0.2}
                    if rng.random() < 0.6 else {},
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
        # Fields derived from a record's own timestamps, which _make adds after build().
        for m in res["messages"]:
            m["attributes"]["sentAt"] = m["attributes"]["createdAt"]
        for c in res["conversations"]:
            c["attributes"]["endedAt"] = c["attributes"]["modifiedAt"] if c["attributes"]["ended"] else None

        names = [k.removeprefix("kobject.") for k in self.sizes if k.startswith("kobject.")]
        self.sizes["klasses"] = len(names)
        res["klasses"] = self._make("klasses", lambda rng, i, id_: ({
            "name": names[i], "displayName": names[i].replace("-", " ").title(), "icon": "cart",
            "color": rng.choice(COLORS), "status": "enabled", "klassSchema": {}, "mixins": []},
            {"kobjects": {"links": {"self": f"/v1/klasses/{names[i]}"}}}))
        for name in names:
            def kobject(rng, i, id_, name=name):
                # Real quirks: the klass relationship uses `link`, not `links`, and its id is the klass name.
                rels = {"klass": {"link": {"self": f"/v1/klasses/{name}"}, "data": {"type": "klass", "id": name}}}
                if rng.random() < 0.85:
                    rels["customer"] = rel("customer", rng.choice(res["customers"])["id"])
                return {"externalId": f"{name}-{i:05d}", "title": f"{name.title()} #{1000 + i}",
                        "description": f"{rng.choice(WORDS).title()} {name}", "icon": "cart", "images": [],
                        "data": {"lineItems": rng.randint(1, 5)}, "tags": [], "rev": rng.randint(1, 6),
                        "custom": {"statusStr": rng.choice(["new", "shipped", "cancelled"]),
                                   "amountNum": round(rng.uniform(5, 900), 2)}}, rels

            self.kobjects[name] = self._make(f"kobject.{name}", kobject, f"kobject.{name}", f"/v1/klasses/{name}")

        self.auth_token = {"type": "auth_token", "id": self.token_id,
                           "attributes": {"name": "Airbyte", "lastTokenChars": API_KEY[-4:],
                                          "roles": self.machine_user["attributes"]["roles"],
                                          "createdAt": iso(ORG_CREATED), "updatedAt": iso(ORG_CREATED)},
                           "relationships": {"org": rel("org", self.org_id), "user": rel("user", self.machine_user["id"])}}


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
        status, payload = self.server.fake.handle(self.command, url.path, query, self.headers.get("Authorization"), body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class FakeKustomer:
    """Serves a Dataset over HTTP. `handle()` is plain Python, so tests can also call it without a socket."""

    def __init__(self, dataset: Dataset | None = None, host: str = "127.0.0.1", port: int = 0):
        self.dataset = dataset or Dataset()
        self.host, self.port = host, port
        self.requests_log: list[dict] = []
        self._lock = threading.Lock()
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
        ]

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

    def __enter__(self) -> "FakeKustomer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def handle(self, method: str, path: str, query: dict[str, str], authorization: str | None, body: bytes = b""):
        """(status, JSON body) for one request: log, authenticate, route."""
        authorized = authorization == f"Bearer {API_KEY}"
        with self._lock:  # never log the token itself
            self.requests_log.append({"method": method, "path": path, "query": dict(query), "authorized": authorized})
        if not path.startswith("/v1/"):
            return 404, error_body(404, "not_found", "Not Found")
        if authorization == f"Bearer {WRONG_REGION_KEY}":
            return 401, error_body(401, "unauthorized", "Unauthorized",
                                   "Auth token associated with pod prod2 but request is being handled by prod1")
        if not authorized:
            return 401, error_body(401, "unauthorized", "Unauthorized", "Invalid or expired auth token")
        matches = [(m, handler) for verb, pattern, handler in self.routes
                   if (m := re.fullmatch(pattern, path)) and verb == method]
        if matches:
            m, handler = matches[0]
            return handler(query, *m.groups(), body=body)
        if any(re.fullmatch(pattern, path) for _, pattern, _ in self.routes):
            return 405, error_body(405, "method_not_allowed", "Method Not Allowed", f"{method} {path} is not supported")
        return 404, error_body(404, "not_found", "Not Found")

    @staticmethod
    def _find(records: list[dict] | None, id_: str):
        found = next((r for r in records or [] if r["id"] == id_), None)
        return (200, {"data": found}) if found else (404, error_body(404, "not_found", "Not Found"))

    @staticmethod
    def _list(query: dict[str, str], path: str, records: list[dict] | None, stream: str):
        if records is None:  # unknown klass name
            return 404, error_body(404, "not_found", "Not Found")
        params = {}
        for name, default in (("page", 1), ("pageSize", DEFAULT_PAGE_SIZE)):
            raw = query.get(name, str(default)).strip()
            if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
                return 400, error_body(400, "bad_request", "Bad Request", f"{name} must be a positive integer",
                                       source={"parameters": name})
            params[name] = int(raw)
        page, size = params["page"], min(params["pageSize"], MAX_PAGE_SIZE.get(stream, 100))  # silently clamped
        ordered = sorted(records, key=lambda r: r["id"])  # per request, so tests can append or mutate records
        start = (page - 1) * size

        def link(p: int) -> str:  # relative, like the real API
            return f"{path}?page={p}&pageSize={size}"

        meta = {"pageSize": size, "page": page}
        if stream == "customers":  # the only GET list that reports totals
            meta |= {"total": len(ordered), "totalPages": -(-len(ordered) // size)}
        links = {"self": link(page), "first": link(1), "prev": link(page - 1) if page > 1 else None,
                 "next": link(page + 1) if start + size < len(ordered) else None}
        return 200, {"meta": meta, "links": links, "data": ordered[start:start + size]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Kustomer API until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8585)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the record counts of the big streams")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    fake = FakeKustomer(Dataset(scaled_sizes(args.scale), seed=args.seed), host=args.host, port=args.port).start()
    print(f"fake Kustomer API at {fake.url} (api key: {API_KEY})", flush=True)
    try:
        fake._thread.join()  # interruptible by Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
