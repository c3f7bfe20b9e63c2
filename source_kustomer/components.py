"""The few things the manifest cannot say in YAML: config normalization, record shape, safe next links."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, MutableMapping
from urllib.parse import urlsplit

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.cursor_pagination_strategy import (
    CursorPaginationStrategy,
)
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.declarative.transformations.config_transformations.config_transformation import (
    ConfigTransformation,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

# `acme.kustomerapp.com` (web app), `acme.api.kustomerapp.com` (org API host), `acme.api.prod2.kustomerapp.com`.
_ORG_HOST = re.compile(r"(?P<org>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.api(?:\.prod\d+)?)?\.kustomerapp\.com(?::\d+)?")
_ORG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Hosts that are Kustomer's shared regional API hosts, not an organization.
_NOT_ORGS = {"api", "www", "app", "developer", "help"}
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
        moment = datetime.fromisoformat(str(value).strip().replace("z", "Z"))
    except ValueError:
        raise config_error(
            f"The `start_date` field {str(value)[:40]!r} is not an ISO 8601 date or date-time. "
            "Use e.g. `2024-01-01` or `2024-01-01T00:00:00Z`, or leave it empty to sync everything."
        ) from None
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class NormalizeConfig(ConfigTransformation):
    """Adds `api_url` (scheme://host[/prefix], no /v1) and `start_datetime` derived from the user's fields."""

    def transform(self, config: MutableMapping[str, Any]) -> None:
        if "organization" not in config:
            return  # the spec check reports the missing required field
        org = normalize_organization(config["organization"])
        config["organization"] = org
        base_url = config.get("base_url")
        config["api_url"] = normalize_base_url(base_url) if base_url else f"https://{org}.api.kustomerapp.com"
        if config.get("start_date"):
            config["start_datetime"] = normalize_start_date(config["start_date"])


class FlattenResource(RecordTransformation):
    """JSON:API resource -> one flat row: attributes at top level, `<relationship>Id` keys for to-one links.

    Not `DpathFlattenFields` + `AddFields`: the foreign-key names come from each record's own relationships.
    """

    def transform(self, record: dict, config: Any = None, stream_state: Any = None, stream_slice: Any = None) -> None:
        attributes = record.pop("attributes", None) or {}
        for key, value in attributes.items():
            record.setdefault(key, value)  # `id` and `type` of the resource win over attributes of the same name
        relationships = record.get("relationships") or {}
        for name, relationship in relationships.items():
            data = relationship.get("data") if isinstance(relationship, dict) else None
            if isinstance(data, dict) and data.get("id") is not None:
                record.setdefault(f"{name}Id", data["id"])


@dataclass
class NextLink(CursorPaginationStrategy):
    """Follows `links.next` (a relative `/v1/...` path) on the configured API host, and nowhere else.

    The returned token is an absolute URL on `config.api_url`, so the API key is only ever sent there.
    """

    def next_page_token(self, response: Any, last_page_size: int, last_record: Any, *args: Any, **kwargs: Any) -> Any:
        link = super().next_page_token(response, last_page_size, last_record, *args, **kwargs)
        if not link:
            return None
        api_url = self.config["api_url"]
        link = str(link)
        if link.startswith(api_url + "/"):
            link = link[len(api_url) :]
        if not link.startswith("/v1/") or "//" in link or "@" in link or ".." in link:
            raise AirbyteTracedException(
                message="Kustomer returned a next-page link to another host or an unexpected path; the sync stopped "
                "rather than send the API key there.",
                internal_message=f"refused links.next {link[:200]!r}",
                failure_type=FailureType.system_error,
            )
        return api_url + link
