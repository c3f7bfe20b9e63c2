"""One fake Kustomer API for the whole integration run, on the fixed port the acceptance configs name."""

import pytest

from integration_tests.fake_kustomer import API_KEY, FakeKustomer

ACCEPTANCE_PORT = 48585  # must match integration_tests/*config*.json


@pytest.fixture(scope="session", autouse=True)
def fake():
    with FakeKustomer(port=ACCEPTANCE_PORT) as server:
        yield server


@pytest.fixture
def config(fake):
    return {"organization": "acme", "api_key": API_KEY, "base_url": fake.url}
