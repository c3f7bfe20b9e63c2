"""The `source-kustomer` command (run.py): records written by `RecordWriter` exactly as the CDK writes them, in order."""

import inspect
import json
import subprocess
import sys

import pytest
import requests
import serpyco_rs._describe
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.models import AirbyteMessage, AirbyteMessageSerializer, AirbyteRecordMessage, Type
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.memory_monitor import MemoryMonitor
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from airbyte_protocol_dataclasses.models import AirbyteRecordMessageMeta

from source_kustomer.run import DirectRecords, RecordWriter, cdk_read_loop, run
from unit_tests.conftest import API, CONFIG, page, resource

DATA = [
    {"id": "1", "name": "Zoë Ångström 🙂", "custom": {"totalSpentNum": 12.5, "vipBool": True}, "endedAt": None},
    {"id": "2", "tags": ["a", "b"], "relationships": {"org": {"data": {"type": "org", "id": "o"}}}, "rev": 3},
    {"id": "3", "quote": 'He said "hi"\n\\ and left', "big": 2**70},  # an int orjson cannot write: the CDK's json
]


def record(data: dict, **fields) -> AirbyteMessage:
    return AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(stream="s", data=data, emitted_at=1700000000123, **fields))


def written(writer: RecordWriter, capsysbinary) -> bytes:
    writer.flush()
    return capsysbinary.readouterr().out


@pytest.mark.parametrize("data", DATA)
def test_a_record_is_written_as_the_cdk_writes_it(data, capsysbinary, monkeypatch):
    writer = RecordWriter()
    assert writer.write(record(data))
    # DirectRecords' records, which never were an AirbyteMessage, stamped with the time as the CDK stamps it.
    monkeypatch.setattr("source_kustomer.run.time.time_ns", lambda: 1700000000123_456789)
    writer.write_record("s", dict(data))
    cdk = (AirbyteEntrypoint.airbyte_message_to_string(record(data)) + "\n").encode()
    assert written(writer, capsysbinary) == cdk * 2
    assert writer.counts == {"s": 1}  # only the direct one: the CDK counts its own


def test_records_with_namespace_or_meta_and_other_messages_are_left_to_the_cdk():
    writer = RecordWriter()
    assert not writer.write(record({"id": "1"}, namespace="n"))
    assert not writer.write(record({"id": "1"}, meta=AirbyteRecordMessageMeta(changes=[])))
    assert not writer.write(AirbyteMessage(type=Type.LOG, log=None))


def test_the_secret_filter_applies_to_records(capsysbinary):
    writer = RecordWriter()
    writer.secrets = [b"s3cret-key"]
    writer.write(record({"id": "1", "note": "the key is s3cret-key"}))
    assert b"the key is ****" in written(writer, capsysbinary)


def test_records_wait_at_most_a_tenth_of_a_second(monkeypatch, capsysbinary):
    clock = [100.0]
    monkeypatch.setattr("source_kustomer.run.time.monotonic", lambda: clock[0])
    writer = RecordWriter()
    writer.write(record({"id": "1"}))
    assert capsysbinary.readouterr().out == b""  # held for the next megabyte
    clock[0] += 0.2
    writer.write(record({"id": "2"}))
    assert capsysbinary.readouterr().out.count(b'"type":"RECORD"') == 2


def test_a_stdout_that_takes_part_of_a_write_still_gets_every_byte(monkeypatch):
    class Unbuffered:  # python -u: stdout's buffer is the raw file, which may write less than it is given
        def __init__(self):
            self.buffer, self.got = self, bytearray()

        def write(self, data):
            self.got += bytes(data[:1000])
            return min(len(data), 1000)

        def flush(self):
            pass

    out = Unbuffered()
    monkeypatch.setattr("sys.stdout", out)
    writer = RecordWriter()
    for n in range(50):
        writer.write(record({"id": str(n), "text": "x" * 100}))
    writer.flush()
    assert [json.loads(line)["record"]["data"]["id"] for line in out.got.splitlines()] == [str(n) for n in range(50)]


def read_command(tmp_path, capsys, streams: list[str]) -> str:
    """What `source-kustomer read` of these streams, full refresh, printed (run in-process)."""
    catalog = {"streams": [{"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                            "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"} for name in streams]}
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    run(["read", "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")])
    return capsys.readouterr().out


def test_a_read_prints_records_before_their_state_with_the_count(api, tmp_path, capsys):
    api.get(f"{API}/tags", json=page([resource("tag", n, name=f"has {CONFIG['api_key']}") for n in range(3)], "/v1/tags?page=2"))
    api.get(f"{API}/tags?page=2", json=page([resource("tag", 3)]))
    printed = read_command(tmp_path, capsys, ["tags"])
    messages = [json.loads(line) for line in printed.splitlines()]
    kinds = [m["type"] for m in messages if m["type"] in ("RECORD", "STATE")]
    assert kinds == ["RECORD"] * 4 + ["STATE"]
    assert messages[[m["type"] for m in messages].index("STATE")]["state"]["sourceStats"]["recordCount"] == 4
    assert CONFIG["api_key"] not in printed and printed.count('"name":"has ****"') == 3
    # The sync read every body in megabyte chunks, which requests still takes its chunk size from.
    assert requests.models.CONTENT_CHUNK_SIZE == 1 << 20
    assert "CONTENT_CHUNK_SIZE" in inspect.getsource(requests.models.Response.content.fget)


def read_tags_and_teams(api, tmp_path, capsys) -> list[dict]:
    api.get(f"{API}/tags", json=page([resource("tag", n) for n in range(3)], "/v1/tags?page=2"))
    api.get(f"{API}/tags?page=2", json=page([resource("tag", n) for n in range(3, 5)]))
    api.get(f"{API}/teams", json=page([resource("team", n, name=None) for n in range(2)]))
    return [json.loads(line) for line in read_command(tmp_path, capsys, ["tags", "teams"]).splitlines()]


def per_stream(messages: list[dict]) -> dict:
    """What each stream printed, in order: records' data, statuses, and states with their counts."""
    seen: dict = {}
    for m in messages:
        if m["type"] == "RECORD":
            seen.setdefault(m["record"]["stream"], []).append(m["record"]["data"])
        elif m["type"] == "STATE":
            seen.setdefault(m["state"]["stream"]["stream_descriptor"]["name"], []).append(m["state"])
        elif m["type"] == "TRACE" and m["trace"]["type"] == "STREAM_STATUS":
            status = m["trace"]["stream_status"]
            seen.setdefault(status["stream_descriptor"]["name"], []).append(status["status"])
    return seen


def test_records_that_skip_the_cdk_print_what_the_cdk_prints(api, tmp_path, capsys, caplog, monkeypatch):
    direct, checks = [], []
    write_record = RecordWriter.write_record
    monkeypatch.setattr(RecordWriter, "write_record", lambda self, *args: direct.append(args[0]) or write_record(self, *args))
    monkeypatch.setattr(MemoryMonitor, "check_memory_usage", lambda self: checks.append(1))
    fast = per_stream(read_tags_and_teams(api, tmp_path, capsys))
    assert "Read 5 records from tags stream" in caplog.text  # the CDK's own count, which it logs, counts them too
    assert sorted(direct) == ["tags"] * 4 + ["teams"]  # each stream's first record goes the CDK's way, for RUNNING
    fast_checks = len(checks)
    direct.clear()
    checks.clear()
    monkeypatch.setattr(DirectRecords, "CDK_READ_LOOP", "another CDK")  # as after a CDK upgrade: its own path
    cdk = per_stream(read_tags_and_teams(api, tmp_path, capsys))
    assert direct == []
    assert fast == cdk
    assert fast_checks == len(checks) > 7  # the memory check saw every message, records included
    assert [entry for entry in fast["tags"] if isinstance(entry, dict) and "sourceStats" in entry][-1]["sourceStats"] == {"recordCount": 5.0}
    assert "name" not in fast["teams"][3]  # a top-level null is left out, as the CDK leaves it out


def test_a_memory_check_that_fails_on_a_direct_record_stops_the_sync_with_its_error(api, tmp_path, capsys, monkeypatch):
    direct = []
    write_record = RecordWriter.write_record
    monkeypatch.setattr(RecordWriter, "write_record", lambda self, *args: direct.append(args[0]) or write_record(self, *args))

    def check(self):
        if direct:  # the check right after the first record that skipped the CDK
            raise AirbyteTracedException(message="Memory usage is critical.", failure_type=FailureType.system_error)

    monkeypatch.setattr(MemoryMonitor, "check_memory_usage", check)
    with pytest.raises(SystemExit) as exit:
        read_tags_and_teams(api, tmp_path, capsys)
    assert exit.value.code == 1 and len(direct) == 1
    errors = [json.loads(line)["trace"]["error"]["message"] for line in capsys.readouterr().out.splitlines() if '"ERROR"' in line]
    assert errors == ["Memory usage is critical."]


def test_the_cdk_read_loop_is_the_one_direct_records_was_written_for():
    # If this fails, the installed CDK changed the code whose per-record work DirectRecords does in its place (syncs
    # fall back to the CDK's path, correct but slower): check DirectRecords against it, then update CDK_READ_LOOP.
    assert cdk_read_loop() == DirectRecords.CDK_READ_LOOP


MESSAGES = [  # a record, a state with its blob and stats, a stream status and a failure: what a sync prints
    {"type": "RECORD", "record": {"stream": "s", "data": {"id": "1", "n": None, "deep": {"a": [1, None]}}, "emitted_at": 1}},
    {"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "s"}, "stream_state": {
        "updatedAt": "2024-01-01T00:00:00.000Z", "__ab_no_cursor_state_message": True}}, "sourceStats": {"recordCount": 2.0}}},
    {"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 1.5, "stream_status": {
        "stream_descriptor": {"name": "s"}, "status": "COMPLETE"}}},
    {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 2.0, "error": {"message": "m", "failure_type": "config_error"}}},
]


def test_protocol_messages_serialize_as_with_the_attribute_docstrings():
    # source_kustomer/__init__.py spares serpyco-rs reading docstrings at import; a CDK imported without it agrees.
    script = ("import json, sys; from airbyte_cdk.models import AirbyteMessageSerializer as S; "
              "print(json.dumps([S.dump(S.load(m)) for m in json.load(sys.stdin)]))")
    plain = subprocess.run([sys.executable, "-c", script], input=json.dumps(MESSAGES), capture_output=True, text=True, check=True)
    assert json.loads(plain.stdout) == [AirbyteMessageSerializer.dump(AirbyteMessageSerializer.load(m)) for m in MESSAGES]
    assert "n" not in json.loads(plain.stdout)[0]["record"]["data"]  # top-level nulls left out, as RecordWriter does
    assert serpyco_rs._describe.get_attributes_doc(AirbyteMessage) == {}  # the shortcut is on (else start-up is slower)
