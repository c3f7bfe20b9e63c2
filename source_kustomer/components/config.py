"""The config a user gives, normalized once per sync into what the streams read (NormalizeConfigTransformation)."""

import ipaddress
import re
import uuid
from dataclasses import InitVar, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, MutableMapping
from urllib.parse import urlsplit

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.transformations.config_transformations.config_transformation import (
    ConfigTransformation,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components.state import SyncPlan
from source_kustomer.components.timestamps import kustomer_timestamp, normalized

# `acme.kustomerapp.com` (web app), `acme.api.kustomerapp.com` (org API host), `acme.api.prod2.kustomerapp.com`.
_ORG_HOST = re.compile(r"(?P<org>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.api(?:\.prod\d+)?)?\.kustomerapp\.com(?::\d+)?")
_ORG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Hosts that are Kustomer's shared regional API hosts, not an organization.
_NOT_ORGS = {"api", "www", "app", "developer", "help"}
SHARED_HOST = "https://api.kustomerapp.com"
ORG_EXAMPLE = "e.g. `acme` for https://acme.kustomerapp.com"


def config_error(message: str) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


def normalize_organization(value: Any) -> str:
    """Reduces every form a user pastes (name, web or API host, URL with path) to the org subdomain."""
    if not isinstance(value, str) or not value.strip():
        raise config_error(f"The `organization` field is empty. Enter your Kustomer org's subdomain, {ORG_EXAMPLE}.")
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", value.strip().lower())
    host, slash, _path = text.partition("/")
    match = _ORG_HOST.fullmatch(host)
    org = match["org"] if match else (host if not slash and _ORG.fullmatch(host) else None)
    if org is None or org in _NOT_ORGS:
        shown = value.strip()[:80]
        raise config_error(
            f"The `organization` field {shown!r} is not a Kustomer organization. Enter the subdomain you sign in at, "
            f"{ORG_EXAMPLE} (a regional or proxy host goes in `base_url`)."
        )
    return org


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(value: Any) -> str:
    """Returns the API root without a trailing `/v1`; plain http only towards this machine."""
    text = str(value).strip().rstrip("/")
    text = text[: -len("/v1")] if text.endswith("/v1") else text
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        parts.port  # raises on a malformed port
    except ValueError:
        parts, host = None, ""
    example = "e.g. `https://api.prod2.kustomerapp.com` or, for a local test server, `http://127.0.0.1:8585`"
    if parts is None or not host or parts.username or parts.password or parts.query or parts.fragment or "@" in text:
        shown = "" if "@" in text else f" {text[:80]!r}"  # never echo credentials pasted into the URL
        raise config_error(f"The `base_url` field{shown} is not a plain URL of a host. Use one like {example}.")
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(host)):
        raise config_error(
            f"The `base_url` field must start with https:// (plain http is allowed only for a loopback host such as "
            f"127.0.0.1 or localhost), {example}; got {text[:80]!r}."
        )
    return text


def normalize_start_date(value: Any) -> str:
    """ISO 8601 date or date-time (UTC if no offset) -> Kustomer's own `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    try:
        return normalized(str(value).strip())
    except ValueError:
        raise config_error(
            f"The `start_date` field {str(value)[:40]!r} is not an ISO 8601 date or date-time. "
            "Use e.g. `2024-01-01` or `2024-01-01T00:00:00Z`, or leave it empty to sync everything."
        ) from None


def normalize_whole_number(value: Any, name: str, low: int, high: int, empty_means: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise config_error(f"The `{name}` field must be a whole number from {low} to {high}, or empty {empty_means}; "
                           f"got {str(value)[:20]!r}.")
    return number


@dataclass
class NormalizeConfigTransformation(ConfigTransformation):
    """Validates what the user gave, with messages that say what to fix, and adds what every stream reads: `api_url`
    (scheme://host[/prefix], no /v1), `start_datetime`, the spec's defaults, `cursor_end` (where every sync stops: `index_lag_seconds`
    before it starts, as search's index trails writes, so the last moments are left whole to the next sync), and
    `sync_id`, which the components of one sync share their rate budget under (sync.py), and an empty `sync_plan`
(state.py), for runners that give no state. A stock
    ConfigTransformation cannot raise a config error with a message of its own."""

    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._index_lag = float(parameters["index_lag_seconds"])
        self._most_in_flight = int(parameters["most_in_flight"])
        self._defaults = {"max_api_usage_percent": int(parameters["usage_percent_default"]),
                          "lookback_window_minutes": int(parameters["lookback_minutes_default"])}

    def transform(self, config: MutableMapping[str, Any]) -> None:
        base_url = config.get("base_url")
        if "organization" in config:
            config["organization"] = normalize_organization(config["organization"])
            config["api_url"] = normalize_base_url(base_url) if base_url else f"https://{config['organization']}.api.kustomerapp.com"
        else:  # as the archived source-kustomer-singer: Kustomer's shared (US) host
            config["api_url"] = normalize_base_url(base_url) if base_url else SHARED_HOST
        if config.get("start_date"):
            config["start_datetime"] = normalize_start_date(config["start_date"])
        config.setdefault("cursor_end", kustomer_timestamp(datetime.now(timezone.utc) - timedelta(seconds=self._index_lag)))
        config.setdefault("sync_id", uuid.uuid4().hex)
        config.setdefault(SyncPlan.KEY, SyncPlan().to_config())  # SourceKustomer replaces it with the state's plan
        if config.get("num_workers") not in (None, ""):
            config["num_workers"] = normalize_whole_number(config["num_workers"], "num_workers", 1,
                                                           self._most_in_flight, "to follow the rate budget")
        for name, default in self._defaults.items():  # the spec's defaults, which the CDK does not fill in
            if config.get(name) in (None, ""):
                config[name] = default
        config["lookback_window_minutes"] = normalize_whole_number(
            config["lookback_window_minutes"], "lookback_window_minutes", 0, 1440, "for the default")
