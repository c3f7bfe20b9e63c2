"""The `source-kustomer` command (run.py): Airbyte's launch of the source, every line through the secret filter."""

import json

import pytest

from source_kustomer.run import run
from unit_tests.conftest import API, CONFIG, page, resource


def read_command(tmp_path, capsys, streams: list[str]) -> str:
    """What `source-kustomer read` of these streams, full refresh, printed (run in-process)."""
    catalog = {"streams": [{"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                            "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"} for name in streams]}
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    run(["read", "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")])
    return capsys.readouterr().out


def test_a_read_prints_records_before_their_state_with_the_count_and_no_secret(api, tmp_path, capsys):
    api.get(f"{API}/tags", json=page([resource("tag", n, name=f"has {CONFIG['api_key']}") for n in range(3)], "/v1/tags?page=2"))
    api.get(f"{API}/tags?page=2", json=page([resource("tag", 3)]))
    printed = read_command(tmp_path, capsys, ["tags"])
    messages = [json.loads(line) for line in printed.splitlines()]
    kinds = [m["type"] for m in messages if m["type"] in ("RECORD", "STATE")]
    assert kinds[:5] == ["RECORD"] * 4 + ["STATE"] and set(kinds[5:]) <= {"STATE"}
    assert sum(m["state"]["sourceStats"]["recordCount"] for m in messages if m["type"] == "STATE") == 4
    assert CONFIG["api_key"] not in printed and printed.count('"name":"has ****"') == 3


def test_a_stream_error_quoting_the_key_is_filtered_and_fails_the_command(api, tmp_path, capsys):
    api.get(f"{API}/tags", status_code=400, json={"errors": [{"status": 400, "title": f"bad token {CONFIG['api_key']}"}]})
    with pytest.raises(SystemExit) as exit:
        read_command(tmp_path, capsys, ["tags"])
    printed = capsys.readouterr().out
    assert exit.value.code == 1
    assert CONFIG["api_key"] not in printed and "bad token ****" in printed
    errors = [json.loads(line)["trace"]["error"] for line in printed.splitlines() if '"ERROR"' in line]
    assert errors and all(error.get("stack_trace") is None for error in errors[-1:])  # the last line: no traceback


@pytest.mark.parametrize("command", ["check", "discover"])
def test_a_config_error_while_the_source_is_built_is_one_clear_message(tmp_path, capsys, command):
    (tmp_path / "config.json").write_text(json.dumps({**CONFIG, "organization": "https://example.com/x"}))
    if command == "check":
        with pytest.raises(SystemExit) as exit:
            run([command, "--config", str(tmp_path / "config.json")])
        assert exit.value.code == 0  # a failed check is an answer, not a failure of the command
        status = json.loads(capsys.readouterr().out.splitlines()[-1])["connectionStatus"]
        assert status["status"] == "FAILED" and "not a Kustomer organization" in status["message"]
    else:
        with pytest.raises(SystemExit) as exit:
            run([command, "--config", str(tmp_path / "config.json")])
        error = json.loads(capsys.readouterr().out.splitlines()[-1])["trace"]["error"]
        assert exit.value.code == 1 and error["failure_type"] == "config_error"
        assert "not a Kustomer organization" in error["message"] and error.get("stack_trace") is None
