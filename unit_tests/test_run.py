"""The `source-kustomer` command (run.py): records written by `RecordWriter` exactly as the CDK writes them, in order."""

import inspect
import json

import pytest
import requests
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.models import AirbyteMessage, AirbyteRecordMessage, Type
from airbyte_protocol_dataclasses.models import AirbyteRecordMessageMeta

from source_kustomer.run import RecordWriter, run
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
def test_a_record_is_written_as_the_cdk_writes_it(data, capsysbinary):
    writer = RecordWriter()
    assert writer.write(record(data))
    assert written(writer, capsysbinary) == (AirbyteEntrypoint.airbyte_message_to_string(record(data)) + "\n").encode()


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


def test_a_read_prints_records_before_their_state_with_the_count(api, tmp_path, capsys):
    api.get(f"{API}/tags", json=page([resource("tag", n, name=f"has {CONFIG['api_key']}") for n in range(3)], "/v1/tags?page=2"))
    api.get(f"{API}/tags?page=2", json=page([resource("tag", 3)]))
    catalog = {"streams": [{"stream": {"name": "tags", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                            "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]}
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    run(["read", "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")])
    printed = capsys.readouterr().out
    messages = [json.loads(line) for line in printed.splitlines()]
    kinds = [m["type"] for m in messages if m["type"] in ("RECORD", "STATE")]
    assert kinds == ["RECORD"] * 4 + ["STATE"]
    assert messages[[m["type"] for m in messages].index("STATE")]["state"]["sourceStats"]["recordCount"] == 4
    assert CONFIG["api_key"] not in printed and printed.count('"name":"has ****"') == 3
    # The sync read every body in megabyte chunks, which requests still takes its chunk size from.
    assert requests.models.CONTENT_CHUNK_SIZE == 1 << 20
    assert "CONTENT_CHUNK_SIZE" in inspect.getsource(requests.models.Response.content.fget)
