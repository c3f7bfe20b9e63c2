"""Following Kustomer's `links.next`, and only on the API host the key belongs to."""

from dataclasses import InitVar, dataclass
from typing import Any, Mapping, Optional

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import PaginationStrategy
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components.records import page_body


def safe_next_link(link: Any, api_url: str) -> Optional[str]:
    """`links.next` (a relative `/v1/...` path, or an absolute URL on the API host) as an absolute URL on `api_url`;
    anything else stops the stream rather than send the API key there."""
    if not link:
        return None
    link = str(link)
    if link.startswith(api_url + "/"):
        link = link[len(api_url):]
    if not link.startswith("/v1/") or "//" in link or "@" in link or ".." in link:
        raise AirbyteTracedException(
            message="Kustomer returned a next-page link to another host or an unexpected path; the sync stopped "
            "rather than send the API key there.",
            internal_message=f"refused links.next {link[:200]!r}",
            failure_type=FailureType.system_error,
        )
    return api_url + link


@dataclass
class NextLinkPaginationStrategy(PaginationStrategy):
    """Follows `links.next` until a page has none or no records (some lists answer an empty last page that still
    links onwards), `parameters.page_size` records a page (100 by default). CursorPagination would follow a link
    to any host, and render two templates per page."""

    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._page_size = int(parameters.get("page_size") or 100)

    @property
    def initial_token(self) -> Any:
        return None

    def get_page_size(self) -> int:
        return self._page_size

    def next_page_token(self, response: Any, last_page_size: int, last_record: Any, *args: Any, **kwargs: Any) -> Any:
        page = page_body(response)
        if not page.get("data"):
            return None
        return safe_next_link((page.get("links") or {}).get("next"), self.config["api_url"])
