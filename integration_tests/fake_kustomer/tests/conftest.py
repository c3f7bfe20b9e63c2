"""Fixtures of the fake's tests. `fake` here also stands in for integration_tests/conftest.py's session-wide
server on KUSTOMER_FAKE_PORT, which these tests never need: they run beside the connector's without a port of their
own."""

import pytest
import requests

from integration_tests.fake_kustomer import Dataset, FakeKustomer, Faults
from integration_tests.fake_kustomer.tests.common import AUTH, MINUTE, NOW, SMALL


@pytest.fixture(scope="module")
def fake():
    """A started server on a free port, one per test module."""
    with FakeKustomer() as server:
        yield server


@pytest.fixture()
def http():
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


@pytest.fixture(scope="module")
def searchable():
    """A server that is never started (tests call handle()) and never mutated."""
    return FakeKustomer(Dataset(), now=NOW)


@pytest.fixture()
def mutable():
    return FakeKustomer(Dataset(), now=NOW)


@pytest.fixture()
def faulty():
    """start(**faults) -> a fresh server on a free port; all stopped after the test."""
    servers = []

    def start(dataset=None, **faults):
        servers.append(FakeKustomer(dataset or Dataset(SMALL), faults=Faults(**faults)).start())
        servers[-1].wall = lambda: MINUTE + 30  # mid-minute: no test straddles a window by chance; tests move it
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture()
def command_line_faults(monkeypatch):
    """The Faults each `main([...])` of the fake's command line would serve with, in order (nothing served)."""
    from integration_tests.fake_kustomer import command_line

    made = []

    class Stub:  # FakeKustomer without serving forever
        url = "http://127.0.0.1:1"

        def __init__(self, dataset, host, port, faults):
            made.append(faults)

        def start(self):
            return self

        def serve_until_interrupted(self):
            pass

    monkeypatch.setattr(command_line, "FakeKustomer", Stub)
    return made
