"""`check`: GET /v1/auth/tokens/current; each failure is a FAILED status that says what to fix."""

import re

import pytest
import requests
from airbyte_cdk.models import Status

from source_kustomer import SourceKustomer
from unit_tests.conftest import API, CONFIG, page, resource

TOKEN = f"{API}/auth/tokens/current"


def check(config=None):
    config = dict(config or CONFIG)
    source = SourceKustomer(None, config, None)
    return source.check(source.logger, config)


def key_works(api, forbidden=()):
    """The token answers; every list (and search) answers 200, or 403 for the `forbidden` paths."""
    api.get(re.compile(re.escape(API) + r"/.*"), json=page([]))
    api.post(f"{API}/customers/search", json=page([]))
    api.get(f"{API}/klasses", json=page([resource("klass", 1, name="order")]))
    for path in forbidden:
        api.register_uri("POST" if path.endswith("search") else "GET", f"{API}/{path}", status_code=403, json={})
    api.get(TOKEN, json={"data": {"type": "auth_token", "id": "t", "attributes": {"roles": []}}})


def test_a_valid_key_passes(api):
    key_works(api)
    result = check()
    assert result.status == Status.SUCCEEDED and not result.message
    assert {r.headers["Authorization"] for r in api.request_history} == {"Bearer unit-test-secret-key"}
    probed = {r.path.removeprefix("/v1/") for r in api.request_history}
    assert {"customers", "notes", "users", "klasses", "klasses/order", "customers/search", "metadata/customer"} <= probed


def test_check_names_the_streams_the_key_may_not_read_and_their_roles(api):
    key_works(api, forbidden=["notes", "klasses/order", "customers/search", "metadata/customer", "audit-logs"])
    result = check()
    assert result.status == Status.SUCCEEDED
    assert "notes (role org.permission.note.read)" in result.message
    assert "deletions (role org.permission.audit_logs.read)" in result.message
    assert "custom-attribute columns, which stay in `custom` (role org.permission.metadata.read)" in result.message
    assert "kobjects (roles org.permission.klass.read and org.permission.kobject.read)" in result.message
    assert "org.permission.search.create" in result.message
    assert "customers" not in result.message.split(":", 1)[1].replace("customers/search", "")


def test_a_key_that_may_read_nothing_fails(api):
    key_works(api)
    api.get(re.compile(re.escape(API) + r"/(?!auth).*"), status_code=403, json={})
    result = check()
    assert result.status == Status.FAILED and "none of the streams" in result.message


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
