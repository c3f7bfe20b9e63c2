"""Config normalization: every `organization` form users paste, `base_url` rules, `start_date` forms."""


import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components.config import normalize_base_url, normalize_organization, normalize_start_date
from source_kustomer.components.config import NormalizeConfigTransformation
from source_kustomer.source import load_manifest


@pytest.mark.parametrize(
    "pasted",
    [
        "acme",
        "  ACME  ",
        "Acme.KustomerApp.com",
        "acme.kustomerapp.com",
        "https://acme.kustomerapp.com/app/customers",
        "https://acme.kustomerapp.com/app/customers?view=all",
        "acme.api.kustomerapp.com",
        "https://acme.api.kustomerapp.com/v1",
        "https://acme.api.prod2.kustomerapp.com/v1",
        "HTTPS://ACME.API.PROD4.KUSTOMERAPP.COM/v1/customers",
        "http://acme.kustomerapp.com/",
        "\tacme.kustomerapp.com\n",
    ],
)
def test_accepted_organization_forms_reduce_to_the_subdomain(pasted):
    assert normalize_organization(pasted) == "acme"


def test_hyphens_and_digits_are_kept():
    assert normalize_organization("https://my-org-2.kustomerapp.com") == "my-org-2"


@pytest.mark.parametrize(
    "pasted",
    [
        "",
        "   ",
        None,
        42,
        "acme corp",
        "acme/",
        "acme/customers",
        "acme?x=1",
        "acme@evil.com",
        "https://acme.kustomerapp.com@evil.com/",
        "user:pw@acme.kustomerapp.com",
        "acme..kustomerapp.com",
        "..",
        "acme.evil.com",
        "https://evil.com/acme.kustomerapp.com",
        "-acme",
        "api.kustomerapp.com",
        "https://api.prod2.kustomerapp.com",
        "acme.kustomerapp.com.evil.com",
        "ac_me",
    ],
)
def test_rejected_organization_forms_give_a_config_error_naming_the_field(pasted):
    with pytest.raises(AirbyteTracedException) as raised:
        normalize_organization(pasted)
    assert raised.value.failure_type == FailureType.config_error
    assert "`organization`" in raised.value.message
    assert "`acme`" in raised.value.message  # an accepted example


@pytest.mark.parametrize(
    "base_url, expected",
    [
        ("https://api.prod2.kustomerapp.com", "https://api.prod2.kustomerapp.com"),
        ("https://api.prod2.kustomerapp.com/v1/", "https://api.prod2.kustomerapp.com"),
        ("https://proxy.example.com/kustomer", "https://proxy.example.com/kustomer"),
        ("http://127.0.0.1:8585", "http://127.0.0.1:8585"),
        ("http://127.5.6.7", "http://127.5.6.7"),
        ("http://localhost:9000/v1", "http://localhost:9000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        (" https://acme.api.kustomerapp.com ", "https://acme.api.kustomerapp.com"),
    ],
)
def test_accepted_base_urls(base_url, expected):
    assert normalize_base_url(base_url) == expected


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.kustomerapp.com",
        "http://10.0.0.5:8080",
        "http://localhost.evil.com",
        "ftp://127.0.0.1",
        "api.kustomerapp.com",
        "https://user:secret@api.kustomerapp.com",
        "https://api.kustomerapp.com?x=1",
        "https://",
        "http://127.0.0.1:notaport",
    ],
)
def test_rejected_base_urls(base_url):
    with pytest.raises(AirbyteTracedException) as raised:
        normalize_base_url(base_url)
    assert raised.value.failure_type == FailureType.config_error
    assert "`base_url`" in raised.value.message
    assert "secret" not in raised.value.message


@pytest.mark.parametrize(
    "start_date, expected",
    [
        ("2024-01-01", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T10:20:30Z", "2024-01-01T10:20:30.000Z"),
        ("2024-01-01T10:20:30.123456Z", "2024-01-01T10:20:30.123Z"),
        ("2024-01-01T12:00:00+02:00", "2024-01-01T10:00:00.000Z"),
        ("2024-01-01 10:20", "2024-01-01T10:20:00.000Z"),
    ],
)
def test_start_date_forms_become_kustomer_timestamps(start_date, expected):
    assert normalize_start_date(start_date) == expected


@pytest.mark.parametrize("start_date", ["yesterday", "2024-13-01", "01/02/2024", "2024-01-01T25:00:00Z"])
def test_bad_start_date_is_a_config_error(start_date):
    with pytest.raises(AirbyteTracedException) as raised:
        normalize_start_date(start_date)
    assert raised.value.failure_type == FailureType.config_error
    assert "`start_date`" in raised.value.message


def normalize(config: dict) -> None:
    """The transformation as the manifest configures it."""
    [rule] = load_manifest()["spec"]["config_normalization_rules"]["transformations"]
    NormalizeConfigTransformation(parameters=rule["$parameters"]).transform(config)


def test_normalize_config_derives_the_api_url_from_the_organization():
    config = {"organization": "https://Acme.kustomerapp.com/app", "api_key": "k", "start_date": "2024-01-01"}
    normalize(config)
    assert config["organization"] == "acme"
    assert config["api_url"] == "https://acme.api.kustomerapp.com"
    assert config["start_datetime"] == "2024-01-01T00:00:00.000Z"


def test_base_url_overrides_the_org_host():
    config = {"organization": "acme", "api_key": "k", "base_url": "https://api.prod2.kustomerapp.com/v1"}
    normalize(config)
    assert config["api_url"] == "https://api.prod2.kustomerapp.com"
    assert "start_datetime" not in config
