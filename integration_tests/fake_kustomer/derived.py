"""Records derived from a conversation, deterministically: its times, events and forwards (GET
/v1/conversations/<id>/times, /events, /forwards), and every conversation's times at once for search's
conversation_time context; and the attachments of messages (GET /v1/messages?include=attachments,
/v1/conversations/<id>/attachments, /v1/messages/<id>/attachments/<id>). `ConversationRecords` is a part of
Dataset (data.py), not used on its own: it works on the attributes Dataset.__init__ sets (seed, org_id, user_ids,
resources, lock, version, ...)."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime

from .shapes import ATTACHMENT_FILES, WORDS
from .wire import iso, parse_stamp, rel


class ConversationRecords:
    """Dataset's records derived from conversations (see the module docstring)."""

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

    def message_attachments(self, message: dict) -> list[dict]:
        """A message's attachments, shaped like Kustomer's examples (conversation_attachments_list.doc.json,
        message_attachment_get.doc.json): about one message in five has one or two, decided by a hash of the seed and
        the message id alone. `links.related` is a signed-looking S3 URL that expires 600 s after the dataset's clock
        (X-Amz-Date), as a real one would."""
        digest = hashlib.sha1(f"{self.seed}/attachments/{message['id']}".encode()).digest()
        if digest[0] >= 52:
            return []
        date = self.clock().strftime("%Y%m%dT%H%M%SZ")
        attachments = []
        for n in range(1 + (digest[1] % 3 == 0)):
            name, content_type = ATTACHMENT_FILES[digest[2 + n] % len(ATTACHMENT_FILES)]
            id_ = self._derived_id(message["attributes"]["createdAt"], f"{message['id']}/attachment/{n}")
            signature = hashlib.sha256(f"{id_}/{date}".encode()).hexdigest()
            related = (f"https://kustomer-prod1-attachments.s3.amazonaws.com/attachments/{self.org_id}/{id_}-{name}"
                       f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=fake-credential%2F{date[:8]}%2Fus-east-1"
                       f"%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=600&X-Amz-Signature={signature}")
            attachments.append({
                "type": "attachment", "id": id_,
                "attributes": {"name": name, "contentType": content_type,
                               "contentLength": 100 + int.from_bytes(digest[4 + 2 * n:6 + 2 * n], "big") * 7,
                               "redacted": digest[8 + n] < 8},
                "relationships": {"org": rel("org", self.org_id), "message": rel("message", message["id"])},
                "links": {"self": f"/v1/messages/{message['id']}/attachments/{id_}", "related": related}})
        return attachments

    def with_attachments(self, messages: list[dict]) -> tuple[list[dict], list[dict]]:
        """(messages, included) for a page asked to include attachments: each message with attachments as a copy
        with `relationships.attachments` ({links, data[]}), and every attachment of the page in `included`. The
        served records themselves are left alone."""
        served, included = [], []
        for message in messages:
            attachments = self.message_attachments(message)
            if attachments:
                message = dict(message, relationships=message["relationships"] | {"attachments": {
                    "links": {"self": f"/v1/messages/{message['id']}/attachments"},
                    "data": [{"type": "attachment", "id": a["id"]} for a in attachments]}})
                included += attachments
            served.append(message)
        return served, included

    @staticmethod
    def _derived_id(stamp: str, key: str) -> str:
        """An ObjectId-like id for a record derived from another: `stamp`'s second, then 16 hex digits of `key`."""
        return f"{parse_stamp(stamp) // 1_000_000:08x}{hashlib.sha1(key.encode()).hexdigest()[:16]}"

    def all_conversation_times(self) -> list[dict]:
        """Every conversation's times, in the order of the conversations: the very records (the same dicts) that
        GET /v1/conversations/<id>/times serves, for search's conversation_time context. Made once and kept until a
        mutation (`version`); then only the times of conversations whose inputs changed (createdAt, channels,
        assignees, customer; or the user count, which the creator is drawn from) are made again."""
        with self.lock:
            conversations = self.resources["conversations"]
            stamp = (self.version, len(conversations), len(self.user_ids))
            if self._all_times is None or self._all_times[0] != stamp:
                made, records = {}, []
                for conversation in conversations:
                    attrs = conversation["attributes"]
                    key = (attrs["createdAt"], tuple(attrs["channels"]), tuple(attrs["assignedUsers"]),
                           tuple(attrs["assignedTeams"]), conversation["relationships"]["customer"]["data"]["id"],
                           len(self.user_ids))
                    kept = self._times_made.get(conversation["id"])
                    made[conversation["id"]] = kept if kept and kept[0] == key else (
                        key, self.conversation_times(conversation))
                    records += made[conversation["id"]][1]
                self._times_made, self._all_times = made, (stamp, records)
            return self._all_times[1]
