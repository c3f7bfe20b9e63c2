"""The manifest is the connector: handed to the CDK's own ConcurrentDeclarativeSource (what Airbyte's manifest runner
and the Connector Builder do), with nothing of ours but the components it names, it discovers the streams
`source-kustomer discover` does and reads the same records."""

import json
from pathlib import Path

import yaml
from airbyte_cdk.models import ConfiguredAirbyteCatalogSerializer
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.test.entrypoint_wrapper import discover, read

from integration_tests import cli
from integration_tests.fake_kustomer import API_KEY, Dataset, FakeKustomer, Faults
from source_kustomer import components  # noqa: F401  (what the manifest's class_names name)

MANIFEST = yaml.safe_load((Path(components.__file__).parent.parent / "manifest.yaml").read_text())


def bare(config: dict, catalog=None) -> ConcurrentDeclarativeSource:
    return ConcurrentDeclarativeSource(catalog=catalog, config=config, state=None, source_config=MANIFEST)


def keyed(records) -> dict:
    """stream -> {id: record}, without the fields that differ from one read to the next by design."""
    result: dict = {}
    for stream, data in records:
        if stream == "message_attachments":  # its download link is signed when read, and expires
            data = {k: v for k, v in data.items() if k != "links"}
        result.setdefault(stream, {})[json.dumps([data.get("id"), data.get("klassName")])] = data
    return result


SMALL = {"customers": 150, "conversations": 100, "messages": 200, "notes": 50, "companies": 30, "users": 20, "tags": 30}


def test_the_bare_manifest_discovers_and_reads_what_the_command_does():
    # Two full reads in a row, a request per conversation for its times, events and forwards: a limit they never
    # reach keeps the second from waiting out the budget.
    with FakeKustomer(Dataset(SMALL), faults=Faults(rate_limit=10**6)) as server:
        compare({"organization": "acme", "api_key": API_KEY, "base_url": server.url})


def compare(config: dict) -> None:
    command = cli.run("discover", config).of_type("CATALOG")[0]
    theirs = discover(bare(dict(config)), dict(config))
    assert not theirs.errors
    assert [s.name for s in theirs.catalog.catalog.streams] == [s["name"] for s in command["streams"]]
    assert any(s["name"].startswith("kobjects_") for s in command["streams"])  # the dynamic streams too

    catalog = cli.configured_catalog(command, incremental=True)
    ours = cli.run("read", config, catalog)
    assert ours.returncode == 0 and not ours.errors()
    configured = ConfiguredAirbyteCatalogSerializer.load(catalog)
    output = read(bare(dict(config), configured), dict(config), configured)
    assert not output.errors
    bare_records = keyed((m.record.stream, m.record.data) for m in output.records)
    command_records = keyed((r["stream"], r["data"]) for r in ours.of_type("RECORD"))
    assert bare_records.keys() == command_records.keys()
    for stream in command_records:
        assert bare_records[stream] == command_records[stream], stream
    assert sum(len(r) for r in command_records.values()) > 500
