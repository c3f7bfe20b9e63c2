"""Signing every request, and the two things that ride on it: the org's rate budget and refusing redirects."""

from dataclasses import InitVar, dataclass, field
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components.sync import Sync


def off_host(url: str, config: Mapping[str, Any]) -> bool:
    return urlsplit(url).netloc != urlsplit(str(config.get("api_url", ""))).netloc


class RefusedRedirect(AirbyteTracedException):
    """A redirect to another host, not followed: the key would go wherever it points."""

    def __init__(self, status: int, host: str) -> None:
        message = (f"Kustomer redirected a request to another host ({host}); the sync stopped rather than follow it. "
                   "Check `base_url`.")
        super().__init__(message=message, internal_message=message, failure_type=FailureType.config_error)
        self.status, self.host = status, host


@dataclass
class KustomerAuthenticator(DeclarativeAuthenticator):
    """`Authorization: Bearer <api_key>` and `Accept: application/json` on every request, built once here; every
    attempt waits for the org's rate budget (Sync.budget), and a redirect to another host is refused.

    Not BearerAuthenticator with the manifest's `api_budget`: that budget takes fixed or moving windows of a set
    size, not a share of the limit the headers report with a reserve for the agents. The CDK's HTTP client calls an
    authenticator before every attempt, retries included, and shows it every response (`ResponseAwareAuthenticator`):
    the two calls a rate budget needs."""

    config: Mapping[str, Any] = field(repr=False)  # holds the key: never in a repr that a log might print
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._headers = {"Authorization": f"Bearer {self.config.get('api_key', '')}", "Accept": "application/json"}
        self._budget = Sync.of(self.config).budget

    def __call__(self, request: requests.PreparedRequest) -> Any:
        self._budget.acquire_call(request)  # may wait for the org's budget
        if self._refuse_redirect not in request.hooks["response"]:  # a retry signs the same request again
            request.register_hook("response", self._refuse_redirect)
        return super().__call__(request)

    def _refuse_redirect(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """Raised before requests follows it (requests calls response hooks first)."""
        location = response.headers.get("location") if response.is_redirect else None
        if location and off_host(urljoin(response.url, location), self.config):
            raise RefusedRedirect(response.status_code, urlsplit(urljoin(response.url, location)).hostname or "?")
        return response

    def update_from_response(self, request: requests.PreparedRequest, response: requests.Response) -> None:
        self._budget.update_from_response(request, response)

    @property
    def auth_header(self) -> str:
        return "Authorization"

    @property
    def token(self) -> str:
        return self._headers["Authorization"]

    def get_auth_header(self) -> Mapping[str, Any]:
        return self._headers
