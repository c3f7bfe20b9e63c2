"""What Kustomer refuses, as it refuses it: a key without a role or paid feature gets HTTP 401 (as documented; 403 is
the older reading, still handled), the same answer as a rejected key. A refused stream is skipped with one warning
and keeps its state; a refused auxiliary request (audit log, metadata) only turns its feature off; a rejected key
fails the sync, found out with one request. Through the real command against the fake Kustomer API."""

import pytest

from integration_tests import cli, expected
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults

SMALL = {"customers": 120, "conversations": 80, "messages": 150, "notes": 40, "users": 20, "tags": 30, "audit-logs": 40}
MARKED = ["customers", "conversations", "messages"]


def setup(server, streams, incremental=True, **config):
    config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url, **config}
    discovered = cli.run("discover", config).of_type("CATALOG")[0]
    return config, cli.configured_catalog(discovered, streams, incremental)


def states(run):
    return {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"] for s in run.final_states()}


def token_checks(server):
    return [e for e in server.requests_log if e["path"] == "/v1/auth/tokens/current"]


@pytest.mark.parametrize("status", [401, 403])
def test_a_stream_without_its_role_is_skipped_once_keeps_its_state_and_syncs_once_granted(status):
    with FakeKustomer(Dataset(SMALL), faults=Faults(forbidden={"notes"}, refusal_status=status)) as server:
        config, catalog = setup(server, ["notes", "tags"])
        [check] = cli.run("check", config).of_type("CONNECTION_STATUS")
        assert check["status"] == "SUCCEEDED" and "notes (role org.permission.note.read)" in check["message"]
        server.requests_log.clear()
        run = cli.run("read", config, catalog)
        assert run.returncode == 0 and not run.errors()
        assert not run.records("notes") and {r["id"] for r in run.records("tags")} == set(expected.expected_ids(server.dataset, "tags"))
        skipped = [w for w in run.warnings() if "Skipped stream notes" in w]
        assert len(skipped) == 1 and "org.permission.note.read" in skipped[0] and f"HTTP {status}" in skipped[0]
        assert len(token_checks(server)) == (status == 401)  # a 401 asks once whether the key itself is refused
        # What the stream could not read stays to be read: granted the role, the next sync reads every note.
        assert states(run)["notes"]["updatedAt"] < "2001"
        server.faults = Faults()
        granted = cli.run("read", config, catalog, state=run.final_states())
        assert {r["id"] for r in granted.records("notes")} == {n["id"] for n in server.dataset.all("notes")}


def test_a_rejected_key_fails_the_sync_with_what_to_do_after_one_check():
    with FakeKustomer(Dataset(SMALL)) as server:
        config, catalog = setup(server, ["notes", "tags", "users"])
        run = cli.run("read", {**config, "api_key": "not-the-key"}, catalog)
        assert run.returncode == 1
        assert any("Kustomer rejected the API key" in e and "Settings > Security > API Keys" in e for e in run.errors())
        assert len(token_checks(server)) == 1


def test_without_the_search_role_later_syncs_skip_the_searched_streams_and_keep_their_state():
    with FakeKustomer(Dataset(SMALL)) as server:
        config, catalog = setup(server, ["customers", "tags"])
        first = cli.run("read", config, catalog)  # lists: no search yet
        server.faults = Faults(forbidden={"search"})
        second = cli.run("read", config, catalog, state=first.final_states())
        assert second.returncode == 0 and not second.errors()
        assert any("Skipped stream customers" in w for w in second.warnings())
        assert states(second)["customers"] == states(first)["customers"]


def test_without_the_metadata_role_custom_attributes_stay_in_custom_and_the_stream_syncs():
    with FakeKustomer(Dataset(SMALL), faults=Faults(forbidden={"metadata"})) as server:
        config, catalog = setup(server, ["customers"])
        assert not any(name.startswith("custom_") for name in catalog["streams"][0]["stream"]["json_schema"]["properties"])
        run = cli.run("read", config, catalog)
        assert run.returncode == 0 and not run.errors()
        assert len(run.records("customers")) == len(server.dataset.all("customers"))
        assert any("custom attributes are not typed" in w and "org.permission.metadata.read" in w for w in run.warnings())


@pytest.mark.parametrize("refusal", [Faults(forbidden={"audit-logs"}), Faults(missing={"audit-logs"}),
                                     Faults(bad_param={"audit-logs"})], ids=["401", "404", "400"])
def test_an_audit_log_it_may_not_read_turns_deletion_markers_off_and_the_streams_complete(refusal):
    # The audit_logs stream itself is skipped when refused or absent from the plan; a 400 there would be our bug, and
    # fails that stream loudly (test_faults), so it is not selected then.
    streams = MARKED + ([] if refusal.bad_param else ["audit_logs"])
    with FakeKustomer(Dataset(SMALL)) as server:
        config, catalog = setup(server, streams)
        first = cli.run("read", config, catalog)
        deleted = server.dataset.delete("customers", [server.dataset.all("customers")[0]["id"]], hard=True,
                                        at=expected.after(first))
        touched = server.dataset.touch("messages", [server.dataset.all("messages")[0]["id"]], at=expected.after(first, 2))
        server.faults = refusal
        second = cli.run("read", config, catalog, state=first.final_states())
        assert second.returncode == 0 and not second.errors()
        assert touched[0]["id"] in {r["id"] for r in second.records("messages")}
        assert deleted[0]["id"] not in {r["id"] for r in second.records("customers")}  # no marker this time
        for stream in MARKED:  # every stream complete, its state moved on
            assert states(second)[stream]["updatedAt"] > states(first)[stream]["updatedAt"], stream
        markers = [w for w in second.warnings() if w.startswith("Deletion markers of")]
        assert 1 <= len(markers) <= len(MARKED) and all("skipped for this sync" in w for w in markers)
        if "audit_logs" in streams:
            assert states(second)["audit_logs"] == states(first)["audit_logs"]  # skipped, so kept
            assert any("Skipped stream audit_logs" in w for w in second.warnings())


def test_a_klass_it_may_not_read_is_skipped_and_the_other_kobjects_sync():
    with FakeKustomer(Dataset(SMALL), faults=Faults(forbidden={"kobjects"})) as server:
        config, catalog = setup(server, ["kobjects", "kobjects_order", "tags"])
        run = cli.run("read", config, catalog)
        assert run.returncode == 0 and not run.errors()
        assert not run.records("kobjects") and not run.records("kobjects_order") and run.records("tags")
        assert any("Skipped stream kobjects" in w for w in run.warnings())


def test_without_the_klass_role_the_klass_streams_are_left_out_and_the_others_sync():
    with FakeKustomer(Dataset(SMALL)) as server:
        config, catalog = setup(server, ["kobjects", "tags"])
        server.faults = Faults(forbidden={"klasses"})
        run = cli.run("read", config, catalog)
        assert run.returncode == 0 and not run.errors()
        assert not run.records("kobjects") and run.records("tags")
