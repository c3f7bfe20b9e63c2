"""`check`: GET /v1/auth/tokens/current; each failure is a FAILED status that says what to fix."""

import pytest
import requests
from airbyte_cdk.models import Status

from source_kustomer import SourceKustomer
from unit_tests.conftest import API, CONFIG

TOKEN = f"{API}/auth/tokens/current"


def check(config=None):
    config = dict(config or CONFIG)
    source = SourceKustomer(None, config, None)
    return source.check(source.logger, config)


def test_a_valid_key_passes(api):
    api.get(TOKEN, json={"data": {"type": "auth_token", "id": "t", "attributes": {"roles": []}}})
    assert check().status == Status.SUCCEEDED
    assert api.last_request.headers["Authorization"] == "Bearer unit-test-secret-key"


def test_a_rejected_key_says_where_to_make_a_new_one(api):
    api.get(TOKEN, status_code=401, json={"errors": [{"status": 401, "code": "unauthorized", "title": "Unauthorized"}]})
    result = check()
    assert result.status == Status.FAILED
    assert "rejected the API key" in result.message and "Unauthorized" in result.message
    assert "Settings > Security > API Keys" in result.message and "`api_key`" in result.message


def test_the_other_error_shape_is_quoted_too(api):
    api.get(TOKEN, status_code=401, json={"errors": [{"code": "expired", "message": "Expired token"}]})
    assert "Expired token" in check().message


def test_a_key_from_another_region_points_at_the_organization(api):
    detail = "Auth token associated with pod prod2 but request is being handled by prod1"
    api.get(TOKEN, status_code=401, json={"errors": [{"status": 401, "title": "Unauthorized", "detail": detail}]})
    result = check()
    assert result.status == Status.FAILED
    assert detail in result.message and "`organization`" in result.message


@pytest.mark.parametrize(
    "answer, words",
    [
        ({"status_code": 404, "json": {"errors": [{"status": 404}]}}, "No Kustomer API at acme.api.kustomerapp.com"),
        ({"status_code": 302, "headers": {"Location": "https://elsewhere.example.com/"}}, "redirects elsewhere"),
        ({"status_code": 403, "json": {}}, "IP restriction"),
        ({"status_code": 503, "text": "busy"}, "HTTP 503"),
        ({"status_code": 200, "text": "<html>login</html>"}, "not like the Kustomer API"),
        ({"exc": requests.exceptions.ConnectionError("Name or service not known")}, "Check `organization`"),
        ({"exc": requests.exceptions.ReadTimeout("slow")}, "ReadTimeout"),
    ],
)
def test_other_failures_say_what_to_fix(api, answer, words):
    api.get(TOKEN, **answer)
    result = check()
    assert result.status == Status.FAILED
    assert words in result.message
    assert "unit-test-secret-key" not in result.message


def test_a_redirect_is_not_followed_with_the_key(api):
    api.get(TOKEN, status_code=301, headers={"Location": "https://elsewhere.example.com/steal"})
    elsewhere = api.get("https://elsewhere.example.com/steal", json={"data": {}})
    check()
    assert not elsewhere.called
