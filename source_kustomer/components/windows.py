"""The retrievers every incremental stream reads through: a window (a slice of the stream's cursor) read whole moves
the stream's state to its end, windows without records included, so an idle sync does not read history again."""

import copy
import threading
from dataclasses import InitVar, dataclass
from datetime import timedelta
from typing import Any, Iterable, Iterator, Mapping, Optional

import isodate

from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.types import Record, StreamSlice

from source_kustomer.components.errors import refused
from source_kustomer.components.pagination import safe_next_link
from source_kustomer.components.records import page_body
from source_kustomer.components.state import CheckpointRhythm, SyncPlan
from source_kustomer.components.sync import Sync
from source_kustomer.components.timestamps import kustomer_timestamp, to_utc


class _ReadUpTo:
    """A window read up to a cursor value, shown to the stream's cursor as a closed partition (`Partition`'s two
    methods the cursor calls)."""

    def __init__(self, stream: str, stream_slice: StreamSlice) -> None:
        self._stream, self._slice = stream, stream_slice

    def to_slice(self) -> StreamSlice:
        return self._slice

    def stream_name(self) -> str:
        return self._stream


@dataclass
class WindowRetriever(Retriever):
    """Reads a window with `records`, then tells the stream's cursor that the window was read through its end: the
    CDK's state stops at the last record read. Not after a refusal (a missing role): what was not read stays to be
    read. The stock SimpleRetriever cannot move the cursor past a window without records."""

    records: Retriever
    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]
    checkpoint_records: Optional[int] = None  # a state at least this often: the manifest's `tuning`
    checkpoint_seconds: Optional[float] = None
    cursor: Optional[Any] = None  # the stream's cursor, passed by the CDK's factory to the stream's retriever
    partition_router: Optional[Any] = None  # the retriever's `partition_router`, passed by the CDK's factory
    most_in_flight: Optional[int] = None  # requests in flight per stream at most, unless `num_workers` says otherwise

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.name = parameters.get("name", "")
        # A parent copy read for a substream (conversation ids for conversation_times) keeps its position in the
        # substream's state: under the substream's name (`stream_name`, which the substream passes down).
        self.key = parameters.get("stream_name") or self.name
        self.parent_copy = self.key != self.name
        self.sync, self.plan = Sync.of(self.config), SyncPlan.of(self.config).stream(self.key)
        self.rhythm = CheckpointRhythm(int(self.checkpoint_records), float(self.checkpoint_seconds))
        # The CDK reads several windows of a stream at once through this one retriever: the cap is the stream's.
        self.in_flight = threading.BoundedSemaphore(int(self.config.get("num_workers") or self.most_in_flight or 1))

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[Any]:
        retriever = self.retriever_for(stream_slice)
        yield from self.read_window(retriever, records_schema, stream_slice)
        self.close_window(stream_slice, retriever)

    def retriever_for(self, window: Any) -> Retriever:
        return self.records

    def read_window(self, retriever: Retriever, schema: Mapping[str, Any], window: Any) -> Iterable[Any]:
        yield from retriever.read_records(schema, window)

    def close_window(self, window: Any, retriever: Retriever) -> None:
        end = (getattr(window, "cursor_slice", None) or {}).get("end_time")
        if end and self.cursor is not None and not refused(retriever):
            self.cursor.observe(Record(data={self.cursor_field: end}, stream_name="", associated_slice=window))

    @property
    def cursor_field(self) -> str:
        return self.cursor.cursor_field.cursor_field_key

    def checkpoint_at(self, window: Any, upto: str) -> None:
        """The cursor's own state, moved to `upto` within the window: as if a window ending there had closed. The
        CDK's cursor keeps the low-water mark of what is read, so windows read in parallel stay exact."""
        part = _ReadUpTo(self.name, StreamSlice(partition=window.partition, cursor_slice={**window.cursor_slice, "end_time": upto}))
        self.cursor.observe(Record(data={self.cursor_field: upto}, stream_name=self.name, associated_slice=part.to_slice()))
        self.cursor.close_partition(part)

    def cursor_state(self) -> Optional[dict]:
        """A copy of the stream's cursor's state, read from a worker: a global cursor's state
        (global_substream_cursor) reads no dict the main thread changes. None if it cannot be read now."""
        try:
            return copy.deepcopy(self.cursor.state) if self.cursor is not None else None
        except RuntimeError:
            return None

    def out_of_order(self) -> None:
        self.sync.warn_once(("order", self.name), f"{self.name}: Kustomer returned records out of {self.cursor_field} "
                            "order; this sync checkpoints the stream only at the end of each window.")


@dataclass
class AuditLogWindowRetriever(WindowRetriever):
    """The audit log comes newest first, paged by `before`, so a window is a checkpoint only once read whole. Its one
    slice is read in windows that widen while the log is empty and narrow where it is full (about `window_records`
    entries each, from `first_window` to `widest_window`), a state after each: a first sync costs about a request per
    page of entries plus a few, not one per day of history. A window whose first page reports (`meta.total`) far
    more entries than that is asked again narrower, so a state still comes about every `window_records` entries. The
    CDK's windows have one size."""

    first_window: str = "P1D"
    widest_window: str = "P30D"
    narrowest_window: str = "PT1H"
    window_records: Optional[int] = None  # the manifest's `checkpoint_records`

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._first, self._widest, self._narrowest = (isodate.parse_duration(d) for d in (
            self.first_window, self.widest_window, self.narrowest_window))

    def read_window(self, retriever: Retriever, schema: Mapping[str, Any], window: Any) -> Iterable[Any]:
        at, end = to_utc(window.cursor_slice["start_time"]), to_utc(window.cursor_slice["end_time"])
        width = self._first
        while at <= end:
            upper = min(at + width, end)
            span = StreamSlice(partition=window.partition, extra_fields=window.extra_fields, cursor_slice={
                **window.cursor_slice, "start_time": kustomer_timestamp(at), "end_time": kustomer_timestamp(upper)})
            pages = self._pages(retriever, span)
            first = next(pages, None)
            total = (page_body(first).get("meta") or {}).get("total") if first is not None else 0
            if isinstance(total, int) and total > 4 * self.window_records and width > self._narrowest:
                pages.close()
                width = max(self._narrowest, width * self.window_records / total)
                continue  # too full to be one checkpoint: that first page again, narrower
            count = 0
            for response in ([first] if first is not None else []) + list(pages):
                for record in retriever.record_selector.select_records(
                        response=response, stream_state={}, records_schema=schema, stream_slice=span):
                    count += 1
                    yield record
            if refused(retriever):
                return
            if self.cursor is not None:
                self.checkpoint_at(window, kustomer_timestamp(upper))
            width = min(self._widest, max(self._narrowest, width * self.window_records / max(count, 1)))
            at = upper + timedelta(milliseconds=1)

    def _pages(self, retriever: Retriever, span: StreamSlice) -> Iterator[Any]:
        """The window's pages, following `links.next` (its `before` cursor) on the API host only."""
        response = retriever.requester.send_request(stream_slice=span)
        while response is not None:
            yield response
            body = page_body(response)
            link = safe_next_link((body.get("links") or {}).get("next"), self.config["api_url"]) if body.get("data") else None
            response = retriever.requester.send_request(stream_slice=span, path=link) if link else None
