"""The support-analytics fields of conversations: doneCount, reopenCount, firstResponse, firstDone, lastDone and
sla, and the relationships sla, slaVersion and queue. `ConversationAnalytics` is a part of Dataset (data.py), not
used on its own. Shapes as in kustomer-api.md §4.2 / §8 and the connector's conversations schema: a conversation
never answered (never done) still has `firstResponse` (`firstDone`, `lastDone`) as the recorded empty object
{"createdByTeams": [], "assignedTeams": [], "assignedUsers": []}.

The rules, so that a warehouse query's expected results can be worked out from Dataset alone. T0 = the
conversation's createdAt and L its modifiedAt, in epoch ms; "ms" means integer milliseconds; businessTime is always
wire.business_ms (the part on Monday to Friday, UTC); a conversation's messages and notes are those whose
`conversation` relationship names it, ordered by (createdAt, id); u0..u4 are the conversation's own draws
(`draws(seed, id)`), so each conversation's fields depend on nothing but its own data:

- firstResponse: the first outbound message (direction "out") with createdAt >= the conversation's createdAt.
  {id, createdAt, sentAt (the message's), createdBy (its createdBy user), createdByTeams (that user's teams:
  Dataset.teams_of), assignedTeams, assignedUsers (the conversation's), responseTime = time = its createdAt - T0,
  businessTime}. Messages stamped before the conversation (the generated data has some) never count.
- Done history. status "done": doneCount = 2 if u1 < 0.25 else 1, reopenCount = doneCount - 1; the last done is at L
  (= endedAt), the first (when doneCount is 2) at T0 + floor((L - T0) * u2). status "open" or "snoozed": reopened if
  u0 < 0.3, with doneCount = 2 if u1 < 0.25 else 1 and reopenCount = doneCount; first done at
  T0 + floor((L - T0) * u2 / 2), the last (when 2) at first + floor((L - first) * u3); else doneCount = reopenCount =
  0 and no done.
- firstDone / lastDone (the first and last done; the same when doneCount is 1): {createdAt, createdBy (the first
  assigned user, else the conversation's modifiedBy), createdByTeams (that user's teams), assignedTeams,
  assignedUsers, time = at - T0, businessTime, messageCount / outboundMessageCount / noteCount (the conversation's
  messages / outbound messages / notes with createdAt <= at), lastMessageDirection (of the last of those messages,
  or null)}.
- sla, on a conversation with u4 < 0.6 whose channel (channels[0]) an SLA matches (the first SLA, in list order,
  whose criteria name that channel; the default org has one per channel, so about 60% of conversations): matchedAt =
  createdAt, version = the SLA's version in force then (Dataset.sla_version_at), target = that version's
  metrics.firstResponse.times[str(priority)], breachAt = T0 + target. With a firstResponse: satisfiedAt = its
  createdAt, breached = satisfiedAt > breachAt, status "breached" or "achieved". Without one: satisfiedAt null, end =
  the last done if status is done else updatedAt, breached = end > breachAt, status "breached", else "achieved" if
  done, else "active". summary {firstBreachAt: breachAt if breached, satisfiedAt: satisfiedAt if achieved},
  metrics {firstResponse: {breachAt, satisfiedAt}}, breach {at: breachAt, metric: "firstResponse"} if breached else
  null. relationships.sla and relationships.slaVersion ({data: {type: sla_version, id}}) name them.
- queue: every conversation has a queue relationship when the org has queues: one that had none gets
  queue_ids[floor(u5 * len(queue_ids))] (Dataset.queue_ids: the queues in creation order). Its work items are in
  that queue.

They are made once, when the dataset is built (and for a conversation create() makes): later touch / create /
delete of messages, notes or work items do not change them, as Kustomer's own roll-ups only change with an update.
"""

from __future__ import annotations

import hashlib

from .wire import business_ms, iso, parse_stamp, rel

EMPTY = ("createdByTeams", "assignedTeams", "assignedUsers")  # what a never-answered / never-done one keeps


def draws(seed: int, conversation_id: str) -> list[float]:
    """The conversation's eight draws in [0, 1): u0, u1, ... (see the module docstring)."""
    digest = hashlib.blake2b(f"{seed}/analytics/{conversation_id}".encode(), digest_size=16).digest()
    return [int.from_bytes(digest[k:k + 2], "big") / 65536 for k in range(0, 16, 2)]


def ms_of(stamp: str) -> int:
    return parse_stamp(stamp) // 1000


class ConversationAnalytics:
    """Dataset's conversation analytics (see the module docstring)."""

    def _analyse_conversations(self) -> None:
        messages, notes = {}, {}
        for message in self.resources["messages"]:
            messages.setdefault(message["relationships"]["conversation"]["data"]["id"], []).append(message)
        for note in self.resources["notes"]:
            notes.setdefault(note["relationships"]["conversation"]["data"]["id"], []).append(note)
        for conversation in self.resources["conversations"]:
            cid = conversation["id"]
            self._conversation_metrics(conversation, messages.get(cid, []), notes.get(cid, []))
        self._analysed = True

    def _conversation_metrics(self, conversation: dict, messages: list[dict], notes: list[dict]) -> None:
        attrs, rels = conversation["attributes"], conversation["relationships"]
        u = draws(self.seed, conversation["id"])
        created, t0, last = attrs["createdAt"], ms_of(attrs["createdAt"]), ms_of(attrs["modifiedAt"])
        key = lambda r: (r["attributes"]["createdAt"], r["id"])  # noqa: E731
        messages, notes = sorted(messages, key=key), sorted(notes, key=key)
        teams_of = getattr(self, "teams_of", {})
        assigned = {"assignedTeams": list(attrs["assignedTeams"]), "assignedUsers": list(attrs["assignedUsers"])}

        reply = next((m for m in messages if m["attributes"]["direction"] == "out"
                      and m["attributes"]["createdAt"] >= created), None)
        first_response = {name: [] for name in EMPTY}
        if reply:
            at = ms_of(reply["attributes"]["createdAt"])
            by = (reply["relationships"].get("createdBy") or {}).get("data", {}).get("id")
            first_response = {"id": reply["id"], "createdAt": reply["attributes"]["createdAt"],
                              "sentAt": reply["attributes"]["sentAt"], "createdBy": by,
                              "createdByTeams": list(teams_of.get(by, [])), **assigned, "responseTime": at - t0,
                              "businessTime": business_ms(t0, at), "time": at - t0}

        done_at: list[int] = []
        if attrs["status"] == "done":
            count = 2 if u[1] < 0.25 else 1
            done_at = [t0 + int((last - t0) * u[2]), last][-count:]
            reopened = count - 1
        elif u[0] < 0.3:
            count = 2 if u[1] < 0.25 else 1
            first = t0 + int((last - t0) * u[2] / 2)
            done_at = [first, first + int((last - first) * u[3])][:count]
            reopened = count
        else:
            count = reopened = 0
        by = attrs["assignedUsers"][0] if attrs["assignedUsers"] else (
            (rels.get("modifiedBy") or {}).get("data", {}).get("id"))

        def done(at: int) -> dict:
            stamp = iso(at)
            before = [m for m in messages if m["attributes"]["createdAt"] <= stamp]
            return {"createdAt": stamp, "createdBy": by, "createdByTeams": list(teams_of.get(by, [])), **assigned,
                    "time": at - t0, "businessTime": business_ms(t0, at), "messageCount": len(before),
                    "noteCount": sum(n["attributes"]["createdAt"] <= stamp for n in notes),
                    "outboundMessageCount": sum(m["attributes"]["direction"] == "out" for m in before),
                    "lastMessageDirection": before[-1]["attributes"]["direction"] if before else None}

        attrs.update({"doneCount": count, "reopenCount": reopened, "firstResponse": first_response,
                      "firstDone": done(done_at[0]) if done_at else {name: [] for name in EMPTY},
                      "lastDone": done(done_at[-1]) if done_at else {name: [] for name in EMPTY}})

        sla = self._matched_sla(attrs["channels"][0]) if u[4] < 0.6 else None
        version = self.sla_version_at(sla, created) if sla else None
        if version:
            breach_at = t0 + version["attributes"]["metrics"]["firstResponse"]["times"][str(attrs["priority"])]
            satisfied = first_response.get("createdAt")
            if satisfied:
                breached = ms_of(satisfied) > breach_at
                status = "breached" if breached else "achieved"
            else:
                end = done_at[-1] if attrs["status"] == "done" else ms_of(attrs["updatedAt"])
                breached = end > breach_at
                status = "breached" if breached else "achieved" if attrs["status"] == "done" else "active"
            attrs["sla"] = {"version": version["attributes"]["version"], "matchedAt": created, "breached": breached,
                            "status": status,
                            "breach": {"at": iso(breach_at), "metric": "firstResponse"} if breached else None,
                            "summary": {"firstBreachAt": iso(breach_at) if breached else None,
                                        "satisfiedAt": satisfied if status == "achieved" else None},
                            "metrics": {"firstResponse": {"breachAt": iso(breach_at), "satisfiedAt": satisfied}}}
            rels["sla"] = rel("sla", sla["id"])
            rels["slaVersion"] = {"data": {"type": "sla_version", "id": version["id"]}}
        if "queue" not in rels and self.queue_ids:
            rels["queue"] = rel("queue", self.queue_ids[int(u[5] * len(self.queue_ids))])

    def _matched_sla(self, channel: str) -> dict | None:
        for sla in self.resources.get("slas", []):
            versions = self.sla_versions.get(sla["id"]) or []
            if any(c.get("conversation_channel", {}).get("value") == channel
                   for v in versions[-1:] for c in v["attributes"]["criteria"]["and"]):
                return sla
        return None
