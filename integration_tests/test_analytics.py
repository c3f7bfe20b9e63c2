"""The support-metric queries of examples/analytics/ on real synced data: the fake org synced through the
`source-kustomer` command (Incremental | Append + Deduped, two syncs with a hard and a soft delete between them),
loaded into DuckDB as Airbyte's typing stores it (examples/analytics/load_duckdb.py), every query run, and every
group of its result checked against the metric worked out here in Python from the fake's own resources
(`fake.dataset`), not from the warehouse."""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from examples.analytics import load_duckdb
from examples.analytics.run import QUERIES, run, streams_of
from integration_tests import cli
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults

UTC = timezone.utc
NEEDED = sorted({stream for name in QUERIES for stream in streams_of(name)})


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def month(text: str, zone=UTC) -> date:
    local = moment(text).astimezone(zone)
    return date(local.year, local.month, 1)


def day(text: str, zone=UTC) -> date:
    return moment(text).astimezone(zone).date()


def rel_id(resource: dict, name: str) -> str | None:
    return ((resource.get("relationships") or {}).get(name) or {}).get("data", {}).get("id")


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


class Org:
    """The synced fake org: the DuckDB warehouse, the fake's data after the changes, what was changed."""

    def __init__(self, con, dataset: Dataset, streams: set[str], hard: dict, soft: dict):
        self.con, self.dataset, self.streams, self.hard, self.soft = con, dataset, streams, hard, soft
        self.teams = {t["id"]: t["attributes"] for t in dataset.all("teams")}
        self.users = {u["id"]: u["attributes"] for u in dataset.all("users")}

    def live(self) -> list[dict]:
        """The conversations a report should count: those Kustomer still has and has not soft-deleted."""
        return [c for c in self.dataset.all("conversations") if not c["attributes"].get("deleted")]

    def team_name(self, team_id: str | None) -> str:
        if team_id is None:
            return "(no team)"
        attrs = self.teams.get(team_id) or {}
        return attrs.get("displayName") or attrs.get("name") or team_id

    def user_name(self, user_id: str | None, missing: str) -> str:
        if user_id is None:
            return missing
        attrs = self.users.get(user_id) or {}
        return attrs.get("displayName") or attrs.get("name") or attrs.get("email") or user_id

    def query(self, name: str, keys: int) -> dict[tuple, tuple]:
        """A query's rows by their first `keys` columns."""
        _, rows = run(self.con, name)
        result = {tuple(row[:keys]): tuple(row[keys:]) for row in rows}
        assert len(result) == len(rows), f"{name}: two rows of one group"
        return result


def pick(conversations: list[dict], test: Callable[[dict], bool], avoid: set[str]) -> dict:
    found = next((c for c in conversations if c["id"] not in avoid and test(c)), None)
    assert found is not None, "the fake org has no conversation to delete that every metric would count"
    return found


@pytest.fixture(scope="module")
def org():
    with FakeKustomer(Dataset(), faults=Faults(rate_limit=10**6)) as fake:
        config = {"organization": "acme", "api_key": API_KEY, "base_url": fake.url}
        discovered = cli.run("discover", config).of_type("CATALOG")[0]
        available = {s["name"] for s in discovered["streams"]}
        catalog = cli.configured_catalog(discovered, set(NEEDED) & available, incremental=True)
        started = time.monotonic()
        first = cli.run("read", config, catalog)
        assert not first.errors() and first.returncode == 0, first.errors() or first.stderr[-2000:]

        # Between the syncs, as in a live org: one conversation deleted outright (with a CSAT rating, handle times,
        # a first response and a team: every metric would count it) and one soft-deleted (resolved, with an SLA).
        # Stamped 62 s ago, so the next sync (which reads up to a minute before it starts) sees both.
        time.sleep(max(0.0, 3 - (time.monotonic() - started)))
        at = stamp(datetime.now(UTC) - timedelta(seconds=62))
        dataset = fake.dataset
        conversations = dataset.all("conversations")
        hard = pick(conversations, lambda c: (c["attributes"].get("satisfactionLevel") or {}).get("rating")
                    and c["attributes"]["assignedTeams"] and dataset.conversation_times(c)
                    and (c["attributes"].get("firstResponse") or {}).get("responseTime") is not None, set())
        soft = pick(conversations, lambda c: (c["attributes"].get("firstDone") or {}).get("time") is not None
                    and (c["attributes"].get("sla") or {}).get("matchedAt") and c["attributes"]["status"] == "done"
                    and dataset.conversation_times(c), {hard["id"]})
        dataset.delete("conversations", [hard["id"]], hard=True, at=at)
        dataset.delete("conversations", [soft["id"]], at=at)
        second = cli.run("read", config, catalog, state=first.final_states())
        assert not second.errors() and second.returncode == 0, second.errors() or second.stderr[-2000:]

        con = load_duckdb.connect()
        load_duckdb.load(con, catalog, [first.messages, second.messages])
        yield Org(con, dataset, available, hard, soft)
        con.close()


def check(actual: dict[tuple, tuple], expected: dict[tuple, tuple], name: str, at_least: int = 3) -> None:
    """Every group of the query is one the data has, and the other way round, with the same numbers."""
    assert len(expected) >= at_least, f"{name}: the fake's data gives only {len(expected)} groups: nothing to test"
    assert set(actual) == set(expected), (f"{name}: groups only in the query: {sorted(set(actual) - set(expected))[:5]}, "
                                          f"only in the data: {sorted(set(expected) - set(actual))[:5]}")
    for key, values in expected.items():
        assert len(actual[key]) == len(values) and all(map(same, actual[key], values)), (
            f"{name}, group {key}: the query says {actual[key]}, the data {values}")


def same(got: Any, want: Any) -> bool:
    """Equal, numbers within a float tolerance (the queries divide and average in DOUBLE)."""
    if isinstance(want, (int, float)) and not isinstance(want, bool) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    return got == want


def needs(org: Org, conversation_field: str) -> None:
    """Skip when the fake's conversations do not have the field yet (another part of the project adds it)."""
    if not any((c["attributes"].get(conversation_field) or {}) for c in org.dataset.all("conversations")):
        pytest.skip(f"the fake Kustomer's conversations have no `{conversation_field}` yet: nothing to check the query on")


def test_the_warehouse_applied_the_deletions(org):
    """What the queries rely on: the hard-deleted conversation's row is gone (its marker applied), the soft-deleted
    one is there with deleted = true, and the hard-deleted one's handle times are still in conversation_times (the
    stream gets no markers: the queries join them to live conversations)."""
    rows = dict(org.con.execute("SELECT id, deleted FROM conversations").fetchall())
    assert org.hard["id"] not in rows and rows[org.soft["id"]] is True
    assert len(rows) == len(org.dataset.all("conversations"))
    times = org.con.execute("SELECT count(*) FROM conversation_times WHERE conversationId = ?", [org.hard["id"]])
    assert times.fetchone()[0] == len(org.dataset.conversation_times(org.hard)) > 0
    assert org.con.execute("SELECT count(*) FROM deletions WHERE id = ?", [org.hard["id"]]).fetchone()[0] == 1


def test_every_query_has_a_test_and_says_what_it_needs():
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert set(QUERIES) <= tested
    for name in QUERIES:
        header = QUERIES[name].read_text().split("\nWITH ", 1)[0].lower()
        for part in ("-- computes:", "-- definition:", "-- streams:", "-- caveats:", "time zone", "deleted", "dialect"):
            assert part in header, f"{name}.sql: its header says nothing of {part.strip('- :')}"
        assert streams_of(name), name


def test_first_response_time(org):
    needs(org, "firstResponse")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for conversation in org.live():
        first = conversation["attributes"].get("firstResponse") or {}
        if first.get("responseTime") is not None:
            for team in first.get("assignedTeams") or [None]:
                groups[(month(first["createdAt"]), team)].append(first)
    expected = {}
    for key, firsts in groups.items():
        times = [f["responseTime"] for f in firsts]
        business = [f["businessTime"] for f in firsts if f.get("businessTime") is not None]
        expected[key] = (org.team_name(key[1]), len(firsts), statistics.fmean(times) / 60000,
                         statistics.median(times) / 60000, mean(business) / 60000 if business else None)
    check(org.query("first_response_time", 2), expected, "first_response_time")


def test_resolution_time(org):
    needs(org, "firstDone")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for conversation in org.live():
        done = conversation["attributes"].get("firstDone") or {}
        if done.get("time") is not None:
            for team in done.get("assignedTeams") or [None]:
                groups[(month(done["createdAt"]), team)].append(done)
    expected = {}
    for key, dones in groups.items():
        times = [d["time"] for d in dones]
        business = [d["businessTime"] for d in dones if d.get("businessTime") is not None]
        expected[key] = (org.team_name(key[1]), len(dones), statistics.fmean(times) / 3_600_000,
                         statistics.median(times) / 3_600_000, mean(business) / 3_600_000 if business else None)
    check(org.query("resolution_time", 2), expected, "resolution_time")


def test_handle_time_per_agent(org):
    sessions: dict[tuple, list[tuple[str, float]]] = defaultdict(list)
    for conversation in org.live():
        for record in org.dataset.conversation_times(conversation):
            attrs = record["attributes"]
            agent = rel_id(record, "createdBy")
            sessions[(month(attrs.get("handleAt") or attrs["createdAt"]), agent)].append(
                (conversation["id"], attrs["handleTime"]))
    expected = {}
    for key, handled in sessions.items():
        conversations, total = len({c for c, _ in handled}), sum(seconds for _, seconds in handled)
        expected[key] = (org.user_name(key[1], "(unknown)"), conversations, len(handled), total / 3600,
                         total / 60 / conversations)
    check(org.query("handle_time_per_agent", 2), expected, "handle_time_per_agent")


def _csat(org: Org, assigned: str, name: Callable[[Any], str]) -> dict[tuple, tuple]:
    surveys: dict[Any, list[float | None]] = defaultdict(list)
    for conversation in org.live():
        survey = conversation["attributes"].get("satisfactionLevel")
        if isinstance(survey, dict) and survey.get("status"):  # a survey was sent
            for owner in conversation["attributes"][assigned] or [None]:
                surveys[owner].append(survey.get("rating"))
    expected = {}
    for owner, ratings in surveys.items():
        rated = [r for r in ratings if r is not None]
        expected[(owner,)] = (name(owner), len(ratings), len(rated), 100 * len(rated) / len(ratings), mean(rated),
                              100 * sum(r >= 4 for r in rated) / len(rated) if rated else None)
    return expected


def test_csat_per_team(org):
    check(org.query("csat_per_team", 1), _csat(org, "assignedTeams", org.team_name), "csat_per_team")


def test_csat_per_agent(org):
    expected = _csat(org, "assignedUsers", lambda user: org.user_name(user, "(unassigned)"))
    check(org.query("csat_per_agent", 1), expected, "csat_per_agent")


def test_sla_breach_rate(org):
    needs(org, "sla")
    groups: dict[tuple, list[bool]] = defaultdict(list)
    for conversation in org.live():
        sla = conversation["attributes"].get("sla") or {}
        if sla.get("matchedAt"):
            groups[(month(sla["matchedAt"]), rel_id(conversation, "sla"))].append(sla.get("breached") is True)
    expected = {key: (len(b), sum(b), 100 * sum(b) / len(b)) for key, b in groups.items()}
    check(org.query("sla_breach_rate", 2), expected, "sla_breach_rate")


def _backlog(org: Org, zone) -> dict[tuple, tuple]:
    spans = []
    for conversation in org.live():
        attrs = conversation["attributes"]
        opened, done = day(attrs["createdAt"], zone), None
        if attrs["status"] == "done":
            done = day((attrs.get("lastDone") or {}).get("createdAt") or attrs.get("endedAt") or attrs["updatedAt"], zone)
            done = max(done, opened)
        spans.append((opened, done))
    first = min(o for o, _ in spans)
    last = max([o for o, _ in spans] + [d for _, d in spans if d])
    expected, today = {}, first
    while today <= last:
        created = sum(o == today for o, _ in spans)
        finished = sum(d == today for _, d in spans)
        backlog = sum(o <= today and not (d is not None and d <= today) for o, d in spans)
        expected[(today,)] = (created, finished, backlog)
        today += timedelta(days=1)
    return expected


def test_backlog(org):
    check(org.query("backlog", 1), _backlog(org, UTC), "backlog", at_least=365)


def test_backlog_in_the_orgs_time_zone(org):
    """The time-zone caveat's remedy: with the session's TimeZone set to the org's, days are cut there."""
    from zoneinfo import ZoneInfo

    org.con.execute("SET TimeZone = 'Pacific/Auckland'")
    try:
        actual = org.query("backlog", 1)
    finally:
        org.con.execute("SET TimeZone = 'UTC'")
    expected = _backlog(org, ZoneInfo("Pacific/Auckland"))
    check(actual, expected, "backlog in Pacific/Auckland", at_least=365)
    assert expected != _backlog(org, UTC)


def test_agent_occupancy(org):
    missing = [s for s in ("work_sessions", "work_items") if s not in org.streams]
    if missing:
        pytest.skip(f"the connector has no {' or '.join(missing)} stream yet (agent_occupancy.sql reads them)")
    handled: dict[str, list[float]] = defaultdict(list)
    for item in org.dataset.all("routing/work-items"):
        seconds = (item["attributes"].get("handle") or {}).get("time")
        if rel_id(item, "workSession") and seconds is not None:
            handled[rel_id(item, "workSession")].append(seconds)
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for session in org.dataset.all("routing/work-sessions"):
        attrs = session["attributes"]
        available = (attrs.get("totalAvailable") or {}).get("time") or 0
        unavailable = (attrs.get("totalUnavailable") or {}).get("time") or 0
        items = handled.get(session["id"], [])
        groups[(month(attrs["signedInAt"]), rel_id(session, "user"))].append((available, unavailable, items))
    expected = {}
    for key, sessions in groups.items():
        available = sum(a for a, _, _ in sessions)
        signed_in = available + sum(u for _, u, _ in sessions)
        handle = sum(sum(items) for _, _, items in sessions)
        expected[key] = (org.user_name(key[1], "(unknown)"), len(sessions), signed_in / 3_600_000,
                         available / 3_600_000, 100 * available / signed_in if signed_in else None,
                         sum(len(items) for _, _, items in sessions), handle / 3_600_000,
                         100 * handle / available if available else None)
    check(org.query("agent_occupancy", 2), expected, "agent_occupancy")
