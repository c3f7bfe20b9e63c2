"""The served records: Dataset and their deterministic generation. The same seed and sizes give the same records;
each stream draws from a generator of its own, so resizing one stream leaves the others' attributes alone."""

from __future__ import annotations

import random
import re
import threading
from datetime import datetime, timezone

from .analytics import ConversationAnalytics
from .configuration import ConfigurationRecords
from .derived import ConversationRecords
from .routing import RoutingRecords
from .shapes import (AUDIT_OBJECTS, CHANNELS, COLORS, CREATED_FROM, DEFAULT_KLASS, DEFAULT_SIZES, FIRST,
                     KLASS_FIELDS, LAST, MAX_AGE, METADATA, METADATA_DETAILS, OLD, ORG_CREATED, UPDATED_FROM,
                     UPDATED_TO, WORDS)
from .store import Resources, SortedIndex, Store
from .wire import API_KEY, PLURALS, STREAM_TYPES, iso, parse_stamp, rel


class Dataset(Store, ConversationRecords, RoutingRecords, ConfigurationRecords, ConversationAnalytics):
    """Every served record, as plain lists of JSON:API resource dicts.

    Tests change them between syncs with touch / create / delete, which stamp `clock()` by default: real UTC time,
    replaced by the FakeKustomer serving this dataset with its own clock. Hand edits work too, but after changing
    timestamps or `deleted` in place, do `dataset.version += 1` so search rebuilds its indexes.

    The routing lists (routing/statuses, routing/work-sessions, routing/work-items) are made the first time anything
    reads them (or the whole of `resources`), from the data as it was built: `resources.settle()` makes them now.
    Besides `resources` and `kobjects`: `sla_versions` (SLA id -> its versions), `holidays` (schedule id -> its
    holidays), `teams_of` (user id -> its teams), and message_attachments(message).
    """

    def __init__(self, sizes: dict[str, int] | None = None, seed: int = 7):
        self.sizes = DEFAULT_SIZES | (sizes or {})  # partial overrides keep the other defaults
        self.seed = seed
        self.clock = lambda: datetime.now(timezone.utc)
        self.lock = threading.RLock()  # the server is threaded: mutations and index rebuilds take turns
        self.version = 0  # moved by every mutation; a search index built at another version is stale
        self._indexes: dict[tuple, tuple[tuple, SortedIndex]] = {}
        self._by_id: dict[int, tuple] = {}  # id(list) -> (stamp, list, its records in id order)
        self._all_times: tuple[tuple, list[dict]] | None = None  # (stamp, every conversation's times): search's
        self._times_made: dict[str, tuple] = {}  # conversation id -> (what its times are made from, its times)
        self._builders: dict[str, tuple] = {}  # stream key -> (build, type, path): create() builds like _build
        self._counts: dict[str, int] = {}  # records ever built per stream key: the `i` of the next one
        # ObjectId = 4-byte creation second + 5 "machine" bytes + 3-byte counter. One machine value per id family
        # keeps ids unique across streams; the counter keeps same-second ids in creation order.
        self._machine, self._families = random.Random(seed).getrandbits(32) << 8, 0
        self.resources: Resources = Resources(self.lock)  # stream -> records; some made on first use
        self.kobjects: dict[str, list[dict]] = {}
        self.added_forwards: dict[str, list[dict]] = {}  # conversation id -> forwards made by add_forward()
        self.user_ids: list[str] = []
        self._analysed = False  # conversations get their analytics fields (analytics.py) once the data is built
        self._build()

    def _rng(self, name: str) -> random.Random:
        # One generator per stream, so resizing one stream leaves the others' attributes alone.
        return random.Random(f"{self.seed}/{name}")  # str seeds go through sha512: stable across processes

    def _ids(self, seconds: list[int]) -> list[str]:
        self._families += 1
        return [f"{s:08x}{self._machine | self._families:010x}{n:06x}" for n, s in enumerate(seconds)]

    def _timeline(self, rng: random.Random, n: int, rows=None) -> list[tuple[str, dict]]:
        """(id, timestamps) pairs in creation order. About a third of a big stream shares three 'burst' updatedAt
        values (bulk updates: keyset pagination must cope with ties); one burst is older than two years.
        `rows(rng, n)`, if given, draws the (created, updated, modified) epoch-ms triples instead, in that order."""
        if rows is not None:
            rows = rows(rng, n)
        else:
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

    def _make(self, stream: str, build, type_: str | None = None, path: str | None = None, rows=None,
              stamped: bool = False) -> list[dict]:
        """sizes[stream] resources; build(rng, i, id) returns (attributes, relationships), timestamps excluded
        (`stamped`: build(rng, i, id, timestamps), for attributes computed from them). `rows`: see _timeline."""
        type_ = type_ or STREAM_TYPES[stream]
        self._builders[stream] = build, type_, path or f"/v1/{PLURALS[type_]}", stamped
        rng = self._rng(stream)
        made = [self._resource(stream, rng, i, id_, stamps)
                for i, (id_, stamps) in enumerate(self._timeline(rng, self.sizes[stream], rows))]
        self._counts[stream] = len(made)
        return made

    def _resource(self, stream: str, rng: random.Random, i: int, id_: str, stamps: dict) -> dict:
        build, type_, path, stamped = self._builders[stream]
        attrs, rels = build(rng, i, id_, stamps) if stamped else build(rng, i, id_)
        return {"type": type_, "id": id_, "attributes": attrs | stamps,
                "relationships": {"org": rel("org", self.org_id)} | rels, "links": {"self": f"{path}/{id_}"}}

    def _derive(self, stream: str, record: dict) -> None:
        """Fields computed from a record's own timestamps, which _resource adds after build()."""
        attrs = record["attributes"]
        if stream == "messages":
            attrs["sentAt"] = attrs["createdAt"]
        elif stream == "conversations":
            attrs["endedAt"] = attrs["modifiedAt"] if attrs["ended"] else None
            if self._analysed:  # a conversation create() makes: no messages, notes or work items yet
                self._conversation_metrics(record, [], [])
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
        """GET /v1/metadata/<resource>: every custom attribute, shaped like Kustomer's example
        (metadata_customer.doc.json): `type`, `displayName`, `multi`, `modifiedBy` (a plain user id), `modifiedAt`,
        `updatedAt`, plus `enumeration` (an array of strings) or `target` where METADATA_DETAILS says; a deleted
        attribute also has `deletedAt`.
        `data.id` is the resource's name, as in the example."""
        klass = resource.removeprefix("kobject.")
        fields = METADATA.get(resource) if klass == resource else KLASS_FIELDS.get(klass, DEFAULT_KLASS)
        if fields is None or (klass != resource and klass not in self.kobjects):
            return None
        details = METADATA_DETAILS.get(resource if klass == resource else "kobject", {})
        by = self.user_ids[1] if len(self.user_ids) > 1 else self.machine_user["id"]  # an admin set them up
        properties = {name: {"type": type_} if not isinstance(type_, dict) else dict(type_)
                      for name, type_ in fields.items()}
        for name, spec in properties.items():
            spec.update({"displayName": re.sub(r"(Str|Txt|Num|At|Bool|Url|Tree)$", "", name).title(), "multi": False}
                        | details.get(name, {}) | {"modifiedBy": by, "updatedAt": iso(ORG_CREATED),
                                                   "modifiedAt": iso(ORG_CREATED)})
        return {"type": "metadata", "id": resource, "attributes": {"properties": properties},
                "relationships": {"org": rel("org", self.org_id)}, "links": {"self": f"/v1/metadata/{resource}"}}

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
        # The streams added after the others (their id families come last, so the others' ids stay as they were).
        self._build_configuration()
        self.teams_of: dict[str, list[str]] = {}  # user id -> the ids of its teams (createdByTeams)
        for team in res["teams"]:
            for member in team["attributes"]["members"]:
                self.teams_of.setdefault(member, []).append(team["id"])
        self._analyse_conversations()
        # Routing's three lists are made on first use, from the data as it is now (routing.py): most tests never
        # read them, and they are a third of the build.
        self._routing_inputs = self._routing_snapshot()
        self.resources.defer(("routing/statuses", "routing/work-sessions", "routing/work-items"), self._build_routing)
