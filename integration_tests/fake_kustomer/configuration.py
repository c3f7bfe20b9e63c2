"""The org's configuration-like records: SLAs and their versions (GET /v1/slas, /v1/slas/<id>?versions=all|active),
snooze options (GET /v1/snoozes), the knowledge base's categories and articles (GET /v1/kb/categories,
/v1/kb/articles) and the business schedules' holidays (GET /v1/schedules/<id|default>?include=holidays).
`ConfigurationRecords` is a part of Dataset (data.py), not used on its own.

Shapes: SLAs, their versions and holidays as Kustomer's own examples show them (sla_get_by_id_versions.doc.json,
schedule_get_by_id_include_holidays.doc.json: an SLA has only `currentVersion` and `createdAt`, no updatedAt);
snoozes, KB articles and categories after the attribute lists in the research notes (§7, §8), for which Kustomer
publishes no example.

- SLA i matches conversations of channel CHANNELS[i % 4] (its versions' criteria) and has 1 + i % 3 versions:
  version 1 made with the SLA (in 2018, before any conversation), version 2 in 2021-2023, version 3 in 2024-2026.
  Version v's first-response target for priority p is SLA_FIRST_RESPONSE[p] * (1 - (v - 1) / 4) ms. `currentVersion`
  is the last version. Dataset.sla_versions[<sla id>] lists the versions in order.
- Holidays: holiday k belongs to schedule k % (S - 1) of the S schedules (every one but the last, which has none;
  the only one if S = 1); whole local days in the schedule's timezone, startDate at local midnight and endDate a
  second before the following midnight, both in UTC. Dataset.holidays[<schedule id>].
- KB: the first two categories are the roots of two knowledge bases; the others hang under an earlier one. The
  third article (i = 2) is soft-deleted (deleted true, deletedAt = updatedAt).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .shapes import (CHANNELS, HOLIDAYS, OLD, ORG_CREATED, SLA_FIRST_RESPONSE, SNOOZES, UPDATED_FROM, UPDATED_TO,
                     WORDS)
from .wire import DAY_MS, iso, parse_stamp, rel

try:
    from zoneinfo import ZoneInfo
except ImportError:  # pragma: no cover - Python < 3.9
    ZoneInfo = None


def local_midnight_ms(year: int, month: int, day: int, zone: str) -> int:
    """Midnight of a local date in an IANA timezone, as epoch ms (UTC midnight if the zone is unknown here)."""
    try:
        tz = ZoneInfo(zone) if ZoneInfo else timezone.utc
    except Exception:  # no tz database on this machine
        tz = timezone.utc
    return int(datetime(year, month, day, tzinfo=tz).timestamp()) * 1000


class ConfigurationRecords:
    """Dataset's configuration-like records (see the module docstring)."""

    def _build_configuration(self) -> None:
        res = self.resources
        self.sla_versions: dict[str, list[dict]] = {}
        res["slas"] = self._make("slas", self._sla, rows=self._sla_rows, stamped=True)
        for sla in res["slas"]:  # Kustomer's example has no updatedAt / modifiedAt on an SLA
            for key in ("updatedAt", "modifiedAt"):
                sla["attributes"].pop(key, None)
        res["snoozes"] = self._make("snoozes", self._snooze)
        self._kb_ids = self._ids([ORG_CREATED // 1000 + 86400] * 2)  # two knowledge bases (not served as a list)
        self._category_kb: dict[str, str] = {}
        res["kb/categories"] = self._make("kb/categories", self._kb_category)
        res["kb/articles"] = self._make("kb/articles", self._kb_article, stamped=True)
        self._build_holidays()

    # --- SLAs -----------------------------------------------------------------------------------------------------

    @staticmethod
    def _sla_rows(rng, n):
        rows = []
        for k in range(n):
            created = ORG_CREATED + (k + 1) * 7 * DAY_MS + rng.randrange(DAY_MS)
            rows.append((created, created, created))
        return rows

    def _sla(self, rng, i, id_, stamps):
        channel, count = CHANNELS[i % len(CHANNELS)], 1 + i % 3
        name = f"{channel.title()} Policy" + (f" {i // len(CHANNELS) + 1}" if i >= len(CHANNELS) else "")
        created = parse_stamp(stamps["createdAt"]) // 1000
        later = (rng.randrange(UPDATED_FROM, OLD), rng.randrange(OLD, UPDATED_TO))
        times = [created, *(max(created, t) for t in later)]
        times = times[:count]  # (an SLA create() makes today has its versions at its creation)
        author = rel("user", rng.choice(self.user_ids))
        versions = []
        for v, at in enumerate(times, 1):
            factor = 1 - (v - 1) / 4
            targets = {p: int(ms * factor) for p, ms in SLA_FIRST_RESPONSE.items()}
            versions.append({
                "type": "sla_version", "id": self._derived_id(iso(at), f"{id_}/version/{v}"),
                "attributes": {
                    "name": name, "description": f"SLA policy for {channel} conversations.", "version": v,
                    "hours": "calendar",
                    "metrics": {"firstResponse": {"enabled": True, "times": targets},
                                "longestUnrespondedMessage": {"enabled": v > 1,
                                                              "times": {p: 4 * t for p, t in targets.items()}
                                                              if v > 1 else {}},
                                "totalConversationOpenTime": {"enabled": False, "times": {}},
                                "totalCustomerWaitTime": {"enabled": False, "times": {}}},
                    "criteria": {"and": [{"conversation_channel": {"operator": "contains", "value": channel}}]},
                    "createdAt": iso(at)},
                "relationships": {"org": rel("org", self.org_id), "createdBy": author, "sla": rel("sla", id_)}})
        self.sla_versions[id_] = versions
        return {"currentVersion": count}, {"createdBy": author, "versions": {
            "data": [{"type": "sla_version", "id": v["id"]} for v in versions]}}

    def sla_version_at(self, sla: dict, stamp: str) -> dict | None:
        """The version of an SLA in force at `stamp` (the latest made at or before it; else the first)."""
        versions = self.sla_versions.get(sla["id"]) or []
        made = [v for v in versions if v["attributes"]["createdAt"] <= stamp]
        return made[-1] if made else (versions[0] if versions else None)

    # --- Snoozes --------------------------------------------------------------------------------------------------

    def _snooze(self, rng, i, id_):
        name, kind, value = SNOOZES[i % len(SNOOZES)]
        if i >= len(SNOOZES):
            name = f"{name} ({i // len(SNOOZES) + 1})"
        return {"name": name, "enabled": name != "1 Week", "value": value, "type": kind}, self._audit(rng, 1.0)

    # --- Knowledge base -------------------------------------------------------------------------------------------

    def _kb_category(self, rng, i, id_):
        rels = {"createdBy": rel("user", rng.choice(self.user_ids))}
        if i < len(self._kb_ids):
            kb, root, topic = self._kb_ids[i], True, ["Help Center", "Internal"][i]
        else:
            parent = rng.choice(sorted(self._category_kb))
            kb, root, topic = self._category_kb[parent], False, f"{rng.choice(WORDS).title()} {i}"
            rels["parent"] = rel("kb_category", parent)
        rels["knowledgeBase"] = {"data": {"type": "knowledge_base", "id": kb}}
        self._category_kb[id_] = kb
        slug = topic.lower().replace(" ", "-")
        langs = {"en_us": {"title": topic, "slug": slug, "description": f"Articles about {topic.lower()}",
                           "disabled": False}}
        if rng.random() < 0.4:
            langs["fr"] = {"title": f"{topic} (fr)", "slug": f"{slug}-fr", "description": f"Articles : {topic}",
                           "disabled": rng.random() < 0.5}
        return {"hash": f"{rng.getrandbits(32):08x}", "langs": langs, "published": i != 4, "root": root}, rels

    def _kb_article(self, rng, i, id_, stamps):
        categories = sorted(rng.sample(sorted(self._category_kb), min(len(self._category_kb), rng.randint(1, 2))))
        status = rng.choice(["published", "published", "published", "draft"])
        scope = rng.choice(["public", "public", "internal"])
        created, updated = parse_stamp(stamps["createdAt"]) // 1000, parse_stamp(stamps["updatedAt"]) // 1000
        published = iso(rng.randint(created, updated)) if status == "published" else None
        langs = {"en_us": {"status": status, "outdated": False}}
        if rng.random() < 0.3:
            langs["fr"] = {"status": rng.choice(["published", "draft"]), "outdated": rng.random() < 0.5}
        topic = rng.choice(WORDS)
        attrs = {"hash": f"{rng.getrandbits(32):08x}", "title": f"How to handle your {topic} ({i})",
                 "source": "kustomer", "status": status, "scope": scope, "publishedAt": published,
                 "deleted": i == 2, "deletedAt": stamps["updatedAt"] if i == 2 else None,
                 "tags": sorted({rng.choice(WORDS) for _ in range(rng.randint(0, 2))}),
                 "categories": categories,
                 "knowledgeBases": [{"id": kb, "featured": rng.random() < 0.2}
                                    for kb in sorted({self._category_kb[c] for c in categories})],
                 "latestLangs": langs}
        author, editor = rng.choice(self.user_ids), rng.choice(self.user_ids)
        rels = {"createdBy": rel("user", author), "modifiedBy": rel("user", editor),
                "categories": {"data": [{"type": "kb_category", "id": c} for c in categories]}}
        if published:
            rels["publishedBy"] = rel("user", editor)
        return attrs, rels

    # --- Holidays -------------------------------------------------------------------------------------------------

    def _build_holidays(self) -> None:
        schedules = self.resources["schedules"]
        self.holidays: dict[str, list[dict]] = {s["id"]: [] for s in schedules}
        owners = schedules[:-1] if len(schedules) > 1 else schedules
        if not owners:
            return
        rng = self._rng("holidays")
        drawn = []
        for k in range(self.sizes["holidays"]):
            schedule = owners[k % len(owners)]
            name, month, day = HOLIDAYS[k % len(HOLIDAYS)]
            year = rng.randint(2023, 2026)
            days = 2 if name == "Company offsite" else 1
            zone = schedule["attributes"]["timezone"]
            start = local_midnight_ms(year, month, day, zone)
            end = local_midnight_ms(*_date_after(year, month, day, days), zone) - 1000
            created = start - rng.randrange(10 * DAY_MS, 90 * DAY_MS)
            drawn.append((created, k, schedule, name, start, end))
        drawn.sort(key=lambda d: (d[0], d[1]))
        ids = self._ids([d[0] // 1000 for d in drawn])
        for id_, (created, k, schedule, name, start, end) in zip(ids, drawn):
            author = schedule["relationships"].get("createdBy") or rel("user", self.machine_user["id"])
            self.holidays[schedule["id"]].append({
                "type": "holiday", "id": id_,
                "attributes": {"name": name, "startDate": iso(start), "endDate": iso(end),
                               "description": f"{name} ({schedule['attributes']['name']})", "enabled": k != 3,
                               "createdAt": iso(created), "modifiedAt": iso(created), "updatedAt": iso(created)},
                "relationships": {"org": rel("org", self.org_id), "createdBy": author, "modifiedBy": author,
                                  "schedule": rel("schedule", schedule["id"])},
                "links": {"self": f"/v1/holidays/{id_}"}})


def _date_after(year: int, month: int, day: int, days: int) -> tuple[int, int, int]:
    d = datetime(year, month, day) + timedelta(days=days)
    return d.year, d.month, d.day
