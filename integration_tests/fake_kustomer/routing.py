"""Routing records: the org's routing statuses (GET /v1/routing/statuses), its agents' work sessions, i.e. shifts
(GET /v1/routing/work-sessions), and the work items routed to them, one per time a conversation was queued
(GET /v1/routing/work-items). `RoutingRecords` is a part of Dataset (data.py), not used on its own: it works on the
attributes Dataset.__init__ and _build set (resources, user_ids, queue_ids, _make, ...).

Kustomer publishes no example response for these endpoints. Their shapes follow the attribute lists of its docs and
of the research notes (§1-§3), and two real event payloads of a third party (`kustomer.work-session.update` and
`kustomer.work-item.update`, Feb 2021), used only for their shape: milliseconds for every duration, `statusAt` /
`statusSelectedCount` inside totalTimeByStatus, the work item's `links.self` spelled `/v1/routing/work-item/<id>`
(singular), and relationships that carry `data` only (resource, lastRevision).

How the records hang together (what a test or a warehouse query can count on):

- Statuses: ROUTING_STATUSES in order, the first SYSTEM_STATUSES `system: true` (created with the org), the rest the
  org's own (one of them, "Training", disabled). statusType is available / busy / unavailable / offline.
- Work sessions: the agents are the non-machine members of the teams (or every non-machine user if the teams have
  none). An agent's sessions fall on distinct days between 2021-01-01 and 2026-10-01, a shift of 1 to 10 hours
  starting between 05:00 and 15:00 UTC. About a quarter of the agents have one open session (signedOutAt null,
  active true), on the last day (2026-09-30): at most one open session per user, and it is their latest.
  createdAt = signedInAt; a closed session's updatedAt = modifiedAt = signedOutAt (read-only from then on); an open
  one's updatedAt is its last status change. totalTimeByStatus is keyed by routing-status ids: the shift is cut into
  one segment per status used, in order; each entry has statusAt (the segment's start), time and businessTime (ms),
  statusSelectedCount; a closed session also has an entry for the offline status at signedOutAt, without times.
  totalAvailable sums the `available` statuses' times, totalUnavailable the `busy` and `unavailable` ones': together
  they are exactly updatedAt - signedInAt. businessTime is wire.business_ms (Monday to Friday, UTC). The
  `status` relationship and statusType are the current status: offline for a closed session.
  handledItemCount / handledConversationCount / workItemCount / lastAssignedItemAt are counted from the work items
  that name the session (accepted ones; distinct conversations of those; routed, assigned or in wrap-up now).
- Work items: each is accepted within a session's span (so assignedTo = the session's user, team = the session's
  team) on a conversation created before it entered the queue (one of the twenty created last before then).
  lastRevision.queueTime = routedAt - enteredQueueAt, handle.time = handle.completedAt - acceptedAt, all in ms, and
  nothing ends after the session does. Only the latest work item of a conversation can be other than `completed`,
  and only if its session is open and the conversation is not done: so a conversation has at most one non-completed
  work item. Those take OPEN_ITEM_STATUSES in turn, in conversation-id order. `queued` items have no assignedTo / acceptedBy / team / workSession; `routed` ones no acceptedBy.
  A conversation with a queue relationship has its work items in that queue.
"""

from __future__ import annotations

import bisect
from collections import Counter

from .shapes import ORG_CREATED, ROUTING_STATUSES, SYSTEM_STATUSES, UPDATED_FROM, UPDATED_TO
from .wire import DAY_MS, business_ms, iso, parse_stamp, rel

HOUR = 3_600_000
# A non-completed item's status, given in turn (by conversation id) to the items that stay open.
OPEN_ITEM_STATUSES = ("assigned", "queued", "wrap-up", "routed", "assigned")


def ms_of(stamp: str) -> int:
    return parse_stamp(stamp) // 1000


class RoutingRecords:
    """Dataset's routing records (see the module docstring)."""

    def _routing_snapshot(self) -> dict:
        """What the routing records are made from, taken when the dataset is built: they are made on first use
        (Dataset.resources defers them), from the data as it was then, whatever tests changed since."""
        res = self.resources
        machines = {u["id"] for u in res["users"] if u["attributes"]["userType"] == "machine"}
        conversations = sorted(({"id": c["id"], "createdAt": c["attributes"]["createdAt"],
                                 "status": c["attributes"]["status"], "channel": c["attributes"]["channels"][0],
                                 "priority": c["attributes"]["priority"], "direction": c["attributes"]["direction"],
                                 "queue": (c["relationships"].get("queue") or {}).get("data", {}).get("id")}
                                for c in res["conversations"]), key=lambda c: (c["createdAt"], c["id"]))
        return {"user_ids": list(self.user_ids), "machines": machines, "queue_ids": list(self.queue_ids),
                "teams_of": {u: list(t) for u, t in self.teams_of.items()}, "team_ids": [t["id"] for t in res["teams"]],
                "conversations": conversations}

    def _build_routing(self) -> None:
        made = self._routing_inputs
        machines, teams_of = made["machines"], made["teams_of"]
        self.agent_ids = (sorted(set(teams_of) - machines) or [u for u in made["user_ids"] if u not in machines]
                          or list(made["user_ids"]))
        res = self.resources
        res["routing/statuses"] = self._make("routing/statuses", self._status, rows=self._status_rows)
        res["routing/work-sessions"] = self._make("routing/work-sessions", self._work_session,
                                                  rows=self._session_rows, stamped=True)
        res["routing/work-items"] = self._make("routing/work-items", self._work_item, path="/v1/routing/work-item",
                                               rows=self._item_rows, stamped=True)
        self._roll_up_sessions()

    # --- Statuses -------------------------------------------------------------------------------------------------

    @staticmethod
    def _status_rows(rng, n):
        """The built-in statuses were made with the org; the org's own later."""
        rows = [(ORG_CREATED + k * 1000,) * 3 for k in range(min(n, SYSTEM_STATUSES))]
        for _ in range(n - len(rows)):
            created = rng.randrange(UPDATED_FROM, UPDATED_TO)
            rows.append((created, created, created))
        return rows

    def _status(self, rng, i, id_):
        name, status_type, routable = ROUTING_STATUSES[i % len(ROUTING_STATUSES)]
        if i >= len(ROUTING_STATUSES):
            name = f"{name} {i // len(ROUTING_STATUSES) + 1}"
        system = i < SYSTEM_STATUSES
        rels = {} if system else {"createdBy": rel("user", rng.choice(self._routing_inputs["user_ids"]))}
        return {"name": name, "description": f"{name}: {status_type}", "statusType": status_type,
                "selectable": True, "system": system, "enabled": name != "Training", "routable": routable}, rels

    def _statuses_by_type(self) -> dict[str, list[dict]]:
        by_type = {"available": [], "busy": [], "unavailable": [], "offline": []}
        for status in self.resources["routing/statuses"]:
            if status["attributes"].get("enabled", True):
                by_type.setdefault(status["attributes"]["statusType"], []).append(status)
        return by_type

    # --- Work sessions --------------------------------------------------------------------------------------------

    def _session_rows(self, rng, n):
        """(signedIn, updated, updated) per session, and self._session_plan[i] = (user, open) in the same order."""
        days = (UPDATED_TO - UPDATED_FROM) // DAY_MS  # the last day, days - 1, holds the open sessions
        plan = []
        per_agent = Counter(rng.choice(self.agent_ids) for _ in range(n)) if self.agent_ids else Counter()
        for agent in sorted(per_agent):
            count, is_open = per_agent[agent], rng.random() < 0.25
            chosen = rng.sample(range(days - 1), count - is_open) + [days - 1] * is_open
            for k, day in enumerate(chosen):
                start = UPDATED_FROM + day * DAY_MS + rng.randrange(5 * HOUR, 15 * HOUR)
                still_open = is_open and k == count - 1
                end = start + (rng.randrange(HOUR // 6, 8 * HOUR) if still_open else rng.randrange(HOUR, 10 * HOUR))
                plan.append((start, end, end, agent, still_open))
        plan.sort()
        self._session_plan = [(agent, still_open) for *_, agent, still_open in plan]
        return [row[:3] for row in plan]

    def _work_session(self, rng, i, id_, stamps):
        agent, is_open = (self._session_plan[i] if i < len(self._session_plan)
                          else (rng.choice(self.agent_ids), False))  # create(): a closed session
        start, end = ms_of(stamps["createdAt"]), ms_of(stamps["updatedAt"])
        by_type = self._statuses_by_type()
        used = [rng.choice(by_type["available"])] if by_type["available"] else []
        for kind, share in (("unavailable", 0.6), ("busy", 0.3)):
            if by_type[kind] and rng.random() < share and (status := rng.choice(by_type[kind])) not in used:
                used.append(status)
        if not used and (working := [s for k in ("busy", "unavailable") for s in by_type[k]]):
            used = [working[0]]
        weights = [rng.random() + 0.25 for _ in used]
        times = [int((end - start) * w / sum(weights)) for w in weights]
        if times:
            times[0] += end - start - sum(times)  # the segments cover the shift exactly
        by_status, totals, at = {}, {"available": [], "other": []}, start
        for status, time in zip(used, times):
            by_status[status["id"]] = {"statusAt": iso(at), "businessTime": business_ms(at, at + time), "time": time,
                                       "statusSelectedCount": 1}
            totals["available" if status["attributes"]["statusType"] == "available" else "other"].append(
                by_status[status["id"]])
            at += time
        current = used[-1] if used else None
        if not is_open and by_type["offline"]:
            current = by_type["offline"][0]
            by_status[current["id"]] = {"statusAt": iso(end), "statusSelectedCount": 1}

        def total(entries):
            summed = {"businessTime": sum(e["businessTime"] for e in entries), "time": sum(e["time"] for e in entries)}
            return ({"statusAt": max(e["statusAt"] for e in entries)} if entries else {}) | summed

        capacity = rng.choice([1, 2, 3, 3, 5])
        status_type = current["attributes"]["statusType"] if current else None
        attrs = {"routable": is_open and bool(current) and current["attributes"]["routable"], "active": is_open,
                 "statusType": status_type, "workItemCount": 0, "pausedWorkItemCount": 0,
                 "signedInAt": iso(start), "signedOutAt": None if is_open else iso(end), "capacity": [],
                 "capacityRemaining": capacity, "totalCapacity": capacity, "handledItemCount": 0,
                 "handledConversationCount": 0, "totalAvailable": total(totals["available"]),
                 "totalUnavailable": total(totals["other"]), "totalTimeByStatus": by_status,
                 "capacityStatus": "idle", "lastAssignedItemAt": None}
        rels = {"user": rel("user", agent)}
        teams = self._routing_inputs["teams_of"].get(agent) or self._routing_inputs["team_ids"][:1]
        if teams:
            rels["team"] = rel("team", teams[0])
        if current:
            rels["status"] = rel("status", current["id"])
        rels["modifiedBy"] = rel("user", agent)
        queue_ids = self._routing_inputs["queue_ids"]
        queues = sorted(rng.sample(queue_ids, min(len(queue_ids), rng.randint(1, 2))))
        rels["queues"] = {"data": [{"type": "queue", "id": q} for q in queues]}
        return attrs, rels

    # --- Work items -----------------------------------------------------------------------------------------------

    def _item_rows(self, rng, n):
        """The items' times, drawn from the sessions: (firstEnterQueueAt, updated, updated) per item, and
        self._item_plan[i] (a dict of everything else) in the same order."""
        sessions = self.resources["routing/work-sessions"]
        conversations = self._routing_inputs["conversations"]  # in creation order
        queue_ids = self._routing_inputs["queue_ids"]
        if not conversations:
            self._item_plan = []
            return []
        created = [c["createdAt"] for c in conversations]
        plan = []
        for k in range(n):
            if sessions:
                session = rng.choice(sessions)
                start, end = ms_of(session["attributes"]["signedInAt"]), ms_of(session["attributes"]["updatedAt"])
                accepted = start + 60_000 + rng.randrange(max(1, end - start - 60_000))  # routed in it too
            else:  # no one works: every item waits in its queue
                session, accepted = None, rng.randrange(UPDATED_FROM, UPDATED_TO)
                end = accepted
            routed = accepted - rng.randrange(1000, 60_000)
            entered = routed - rng.randrange(500, 1_800_000)
            j = bisect.bisect_right(created, iso(entered))
            conversation = conversations[rng.randrange(max(0, j - 20), j) if j else 0]
            first = entered - (rng.randrange(60_000, 1_800_000) if rng.random() < 0.1 else 0)  # queued twice
            handle_end = min(accepted + rng.randrange(60_000, 3_600_000), end)
            completed = min(handle_end + rng.randrange(0, 120_000), end)
            queue = conversation["queue"]
            if queue is None and session is not None and session["relationships"]["queues"]["data"]:
                queue = rng.choice(session["relationships"]["queues"]["data"])["id"]
            elif queue is None and queue_ids:
                queue = rng.choice(queue_ids)
            plan.append({"k": k, "session": session, "conversation": conversation, "queue": queue, "first": first,
                         "entered": entered, "routed": routed, "accepted": accepted, "handle_end": handle_end,
                         "completed": completed,
                         "ivr": rng.randrange(10_000, 120_000) if conversation["channel"] == "voice" else 0,
                         "status": "completed", "rev": rng.randint(2, 12)})
        by_conversation: dict[str, list[dict]] = {}
        for item in sorted(plan, key=lambda p: (p["first"], p["k"])):
            by_conversation.setdefault(item["conversation"]["id"], []).append(item)
        still_open = 0
        for conversation_id in sorted(by_conversation):
            items = by_conversation[conversation_id]
            for number, item in enumerate(items, 1):
                item["number"] = number
            last = items[-1]
            if (last["session"] is not None and last["session"]["attributes"]["active"]
                    and last["conversation"]["status"] != "done"):  # in turn, so that every status is there
                last["status"] = OPEN_ITEM_STATUSES[still_open % len(OPEN_ITEM_STATUSES)]
                still_open += 1
        for item in plan:
            item["updated"] = {"queued": item["entered"], "routed": item["routed"], "assigned": item["accepted"],
                               "wrap-up": item["handle_end"], "completed": item["completed"]}[item["status"]]
        plan.sort(key=lambda p: (p["first"], p["updated"], p["updated"], p["k"]))
        self._item_plan = plan
        return [(p["first"], p["updated"], p["updated"]) for p in plan]

    def _work_item(self, rng, i, id_, stamps):
        if i < len(self._item_plan):
            plan = self._item_plan[i]
        else:  # create(): a queued item, entered at its creation, on a conversation without an open item
            items = self.resources["routing/work-items"]
            busy = {r["relationships"]["resource"]["data"]["id"] for r in items
                    if r["attributes"]["status"] != "completed"}
            live = self.resources["conversations"]
            chosen = rng.choice([c for c in live if c["id"] not in busy] or live)
            conversation = {"id": chosen["id"], "createdAt": chosen["attributes"]["createdAt"],
                            "status": chosen["attributes"]["status"], "channel": chosen["attributes"]["channels"][0],
                            "priority": chosen["attributes"]["priority"],
                            "direction": chosen["attributes"]["direction"],
                            "queue": (chosen["relationships"].get("queue") or {}).get("data", {}).get("id")}
            entered = ms_of(stamps["createdAt"])
            queue_ids = self._routing_inputs["queue_ids"]
            plan = {"session": None, "conversation": conversation, "first": entered, "entered": entered,
                    "status": "queued", "ivr": 0, "rev": 1,
                    "number": 1 + sum(r["relationships"]["resource"]["data"]["id"] == chosen["id"] for r in items),
                    "queue": conversation["queue"] or (rng.choice(queue_ids) if queue_ids else None)}
        status, conv, session = plan["status"], plan["conversation"], plan["session"]
        routed = status != "queued"
        accepted = status in ("assigned", "wrap-up", "completed")
        handled = status in ("wrap-up", "completed")
        entered, ivr = plan["entered"], plan["ivr"]
        attrs = {"resourceType": "conversation", "status": status, "paused": False, "channel": conv["channel"],
                 "firstEnterQueueAt": iso(plan["first"]), "queuedCount": 1 + (plan["first"] < entered),
                 "priority": conv["priority"], "itemSize": 1,
                 "ivr": {"businessTime": business_ms(entered - ivr, entered), "time": ivr}
                 | ({"enteredAt": iso(entered - ivr)} if ivr else {}),
                 "handle": {"time": plan["handle_end"] - plan["accepted"],
                            "businessTime": business_ms(plan["accepted"], plan["handle_end"]),
                            "completedAt": iso(plan["handle_end"])} if handled else {},
                 "wrapUp": ({"enteredAt": iso(plan["handle_end"])}
                            | ({"time": plan["completed"] - plan["handle_end"]} if status == "completed" else {}))
                 if handled else {},
                 "completedAt": iso(plan["completed"]) if status == "completed" else None,
                 "resourceCreatedAt": conv["createdAt"], "resourceDirection": conv["direction"], "rev": plan["rev"],
                 "workItemNumber": plan["number"],
                 "lastRevision": {"enteredQueueAt": iso(entered),
                                  "routedAt": iso(plan["routed"]) if routed else None,
                                  "acceptedAt": iso(plan["accepted"]) if accepted else None,
                                  "queueTime": plan["routed"] - entered if routed else None,
                                  "queueBusinessTime": business_ms(entered, plan["routed"]) if routed else None}}
        rels = {"resource": rel("conversation", conv["id"])}
        if plan["queue"]:
            rels["queue"] = rel("queue", plan["queue"])
        if routed and session is not None:
            agent = session["relationships"]["user"]["data"]["id"]
            rels["assignedTo"] = rel("user", agent)
            if accepted:
                rels["acceptedBy"] = rel("user", agent)
            if "team" in session["relationships"]:
                rels["team"] = rel("team", session["relationships"]["team"]["data"]["id"])
            rels["workSession"] = rel("work_session", session["id"])
            rels["modifiedBy"] = rel("user", agent)
        return attrs, rels

    def _roll_up_sessions(self) -> None:
        """The sessions' counts of their work items (see the module docstring)."""
        of_session: dict[str, list[dict]] = {}
        for item in self.resources["routing/work-items"]:
            if session := item["relationships"].get("workSession"):
                of_session.setdefault(session["data"]["id"], []).append(item)
        for session in self.resources["routing/work-sessions"]:
            items = of_session.get(session["id"], [])
            accepted = [i for i in items if i["relationships"].get("acceptedBy")]
            load = sum(i["attributes"]["status"] in ("routed", "assigned", "wrap-up") for i in items)
            attrs = session["attributes"]
            remaining = max(0, attrs["totalCapacity"] - load)
            attrs.update({"workItemCount": load, "capacityRemaining": remaining,
                          "handledItemCount": len(accepted),
                          "handledConversationCount": len({i["relationships"]["resource"]["data"]["id"]
                                                           for i in accepted}),
                          "capacity": [{"limit": attrs["totalCapacity"], "remaining": remaining, "priority": 1}]
                          if attrs["active"] else [],
                          "capacityStatus": "idle" if not load else "full" if not remaining else "available",
                          "lastAssignedItemAt": max((i["attributes"]["lastRevision"]["acceptedAt"] for i in accepted),
                                                    default=None)})
