"""One fake Kustomer API for the whole integration run.

It listens on 127.0.0.1:$KUSTOMER_FAKE_PORT, by default 48585, the port integration_tests/*config*.json name; the
standard suite (test_standard_suite.py) and the tests that read those configs put this port in their base_url.
`make test` runs one pytest per Python at the same time, each with a port of its own.
"""

import os

import pytest

from integration_tests.fake_kustomer import API_KEY, FakeKustomer, Faults

ACCEPTANCE_PORT = int(os.environ.get("KUSTOMER_FAKE_PORT") or 48585)


@pytest.fixture(scope="session", autouse=True)
def fake():
    # Full reads of this org make about 1,000 requests (a request per conversation for its times, events and
    # forwards), more than the sync's share of the default 1,000 a minute: a limit they never reach keeps them from
    # waiting out the budget (test_faults.py tests the budget).
    with FakeKustomer(port=ACCEPTANCE_PORT, faults=Faults(rate_limit=10**6)) as server:
        yield server


@pytest.fixture
def config(fake):
    return {"organization": "acme", "api_key": API_KEY, "base_url": fake.url}
