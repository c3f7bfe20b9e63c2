"""What Kustomer's answers mean for a stream: a rejected key, a missing role, a fault to retry, Kustomer's own words."""

import random
import threading
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy, ErrorResolution, ResponseAction
from airbyte_cdk.sources.streams.http.error_handlers.response_models import SUCCESS_RESOLUTION
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components.records import page_body
from source_kustomer.components.sync import Sync


def kustomer_words(response: Any) -> tuple[str, str]:
    """(status, detail) of an error answer: Kustomer's first error's `status`, else the HTTP status; and its
    `detail`, `message` or `title` (it sends either shape), else "no details"."""
    try:
        body = response.json()
    except (ValueError, AttributeError):
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    status = first.get("status") or getattr(response, "status_code", None) or "?"
    return str(status), str(first.get("detail") or first.get("message") or first.get("title") or "no details")


def short(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return message if len(message) <= 300 else message[:300] + "..."


def error_handler_of(retriever: Any) -> Any:
    return getattr(getattr(retriever, "requester", None), "error_handler", None)


def refused(retriever: Any) -> bool:
    """Whether Kustomer refused a request of this retriever's stream (a missing role or paid feature)."""
    return bool(getattr(error_handler_of(retriever), "refused", False))


@dataclass
class KustomerErrorHandler(DefaultErrorHandler):
    """The manifest's filters, with what a filter list cannot say:

    - `{status}` and `{detail}` in a filter's message are Kustomer's own words (kustomer_words), filled in here once
      rather than by a Jinja snippet in every message.
    - A 401 that the filters skip (a missing role) is a rejected key, failed with `bad_key`, when Kustomer refuses the
      key itself (`key_check`: GET /v1/auth/tokens/current, asked once per sync, answers 200 for any valid key
      whatever its roles); if Kustomer cannot say, the stream fails as a transient error, to be retried.
    - The first skipped answer of each status is logged as a warning (the CDK logs them as info), unless `quiet`,
      and kept in `ignored`: a stream refused (`refusals`) does not move its state past what it could not read.
    - A 2xx page (a JSON object with `data`, no `errors`) is a success without the filters: none can match it
      (they match error statuses, a body that is not JSON, an error's message), and each would parse it again."""

    bad_key: Optional[Any] = None  # an HttpResponseFilter: the message of a rejected key
    key_check: Optional[Any] = None  # an HttpRequester of GET /v1/auth/tokens/current
    refusals: List[int] = field(default_factory=lambda: [401, 403])  # skipped answers that mean "not readable"
    quiet: bool = False  # skipped answers are not warned about: the reader that asked says what they mean

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self.ignored: dict[int, str] = {}  # HTTP status -> the first skip message
        self._lock = threading.Lock()

    def interpret_response(self, response_or_exception: Any) -> ErrorResolution:
        if 200 <= getattr(response_or_exception, "status_code", 0) < 300:
            body = page_body(response_or_exception)
            if "data" in body and "errors" not in body:  # a page; an error in a 200 still meets the filters
                return SUCCESS_RESOLUTION
        resolution = self.in_kustomer_words(super().interpret_response(response_or_exception), response_or_exception)
        status = getattr(response_or_exception, "status_code", None)
        if resolution.response_action != ResponseAction.IGNORE or status is None:
            return resolution
        if status == 401:
            key_refused = Sync.of(self.config).key_refused(self._ask_key_check)
            if key_refused and self.bad_key is not None:
                return self.in_kustomer_words(self.bad_key.matches(response_or_exception), response_or_exception)
            if key_refused is None:
                return ErrorResolution(ResponseAction.FAIL, FailureType.transient_error,
                                       "Kustomer answered HTTP 401, and GET /v1/auth/tokens/current did not answer to "
                                       "tell a rejected key from a missing role; the stream will be retried.")
        with self._lock:
            first = status not in self.ignored
            self.ignored.setdefault(status, resolution.error_message or f"HTTP {status}")
        if first and resolution.error_message and not self.quiet:
            Sync.of(self.config).warn_once(resolution.error_message, resolution.error_message)
        return resolution

    @staticmethod
    def in_kustomer_words(resolution: Optional[ErrorResolution], response: Any) -> Optional[ErrorResolution]:
        message = resolution.error_message if resolution is not None else None
        if not message or ("{status}" not in message and "{detail}" not in message):
            return resolution
        status, detail = kustomer_words(response)
        return ErrorResolution(resolution.response_action, resolution.failure_type,
                               message.replace("{status}", status).replace("{detail}", detail))

    def _ask_key_check(self) -> Optional[bool]:
        """True: the key is refused; False: it works (a 401 means a missing role); None: Kustomer did not say."""
        if self.key_check is None:
            return None
        try:
            status = self.key_check.send_request().status_code
        except (AirbyteTracedException, AttributeError):
            return None
        return status == 401 if status in (200, 401) else None

    @property
    def refused(self) -> bool:
        """Kustomer refused a request of this stream (a missing role or paid feature)."""
        return any(status in self.ignored for status in self.refusals)


class KustomerBackoffStrategy(BackoffStrategy):
    """Exponential with jitter for faults (ExponentialBackoffStrategy has no jitter: parallel requests that failed
    together would retry together); for a 429 the org's budget does the waiting."""

    def backoff_time(self, response_or_exception: Any, attempt_count: int) -> float:
        if getattr(response_or_exception, "status_code", None) == 429:
            return 0.1
        return min(60.0, 2.0 ** max(attempt_count - 1, 0)) * random.uniform(0.5, 1.0)
