"""Kustomer's search (`POST /v1/customers/search`), read exactly at its limits, and the retriever of searched streams.

Search answers at most a window of results per query (Elasticsearch's result window: most likely 10,000 results, so
page 21 of 500; Kustomer's docs say 100 pages), and what it answers past that is unknown: a 404, a 400, a 500, or a
silent end. So a query is never asked past `result_window` results or `page_cap` pages: it goes on from the last
`updatedAt` read (records sharing it are read again and emitted once). A page refused past the first is taken as the
cap too. A query that ends (no next link, an empty page) before the rows it reported (`meta.total`) is read on from
the last `updatedAt` rather than closed short. A page with `meta.timed_out` (a partial result) is asked again."""

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Mapping, Optional

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.types import Record, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components.audit_log import AuditLogDeletes
from source_kustomer.components.errors import error_handler_of, kustomer_words, refused
from source_kustomer.components.pagination import safe_next_link
from source_kustomer.components.records import page_body
from source_kustomer.components.state import CheckpointRhythm, klass_search_state, state_message
from source_kustomer.components.timestamps import cursor_value, normalized
from source_kustomer.components.windows import WindowRetriever

LOGGER = logging.getLogger("airbyte")


class SearchRefused(AirbyteTracedException):
    """Kustomer refused the first page of a query (a 4xx other than a missing role): the query context or its
    criteria are not served. A stream with another way to read falls back; the others fail with this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message=message, internal_message=message, failure_type=FailureType.system_error)
        self.status = status


@dataclass
class _Query:
    """What one query (one `gte` start) read."""
    total: Optional[int] = None  # meta.total of its first page
    received: int = 0  # rows received, repeats included
    new: int = 0  # rows emitted
    first: Optional[str] = None  # the cursor values of its first and last rows
    last: Optional[str] = None
    natural_end: bool = False  # no next link, or an empty page (else: cut by a cap or a refused page)
    unordered: bool = False

    @property
    def complete(self) -> bool:
        return self.natural_end and (self.total is None or self.received >= self.total)


class SearchReader:
    """One window of a search, exactly: see the module's docstring. `retriever` holds the search's requester and
    record selector (a SimpleRetriever of the manifest); `later_pages`, the requester for pages past the first, retries
    a fault less (a page that keeps failing past the first is most likely the cap: the query goes on from page 1)."""

    def __init__(self, name: str, retriever: Any, later_pages: Any, limits: Mapping[str, Any], page_size: int,
                 api_url: str, sync: Any, cursor_field: str = "updatedAt") -> None:
        self.name, self.retriever, self.later_pages = name, retriever, later_pages or retriever.requester
        self.size, self.api_url, self.sync, self.field = page_size, api_url, sync, cursor_field
        self.result_window = int(limits["result_window"])  # the manifest's `search_limits`
        self.page_cap = int(limits["page_cap"])
        self.timed_out_retries = int(limits["timed_out_retries"])

    def read(self, schema: Mapping[str, Any], window: StreamSlice) -> Iterable[Any]:
        start = window.cursor_slice["start_time"]
        ties_at, ties = None, set()  # the latest cursor value read, and the ids read at it (emitted once)
        stalled = 0
        while True:
            query = _Query()
            for record in self._query(schema, self._from(window, start), query):
                value, key = cursor_value(record, self.field), record.get("id")
                if value is not None:
                    if ties_at is not None and value < ties_at:
                        query.unordered = True
                    elif value == ties_at and key in ties:
                        continue
                    elif ties_at is None or value > ties_at:
                        ties_at, ties = value, set()
                    ties.add(key)
                query.new += 1
                yield record
            if refused(self.retriever):  # a missing role: its handler, quiet for search, has no word of it yet
                handler = error_handler_of(self.retriever)
                why = next((m for s, m in handler.ignored.items() if s in handler.refusals), None)
                if why:
                    self.sync.warn_once(why, why)
                return
            if query.complete:
                return
            if query.unordered:
                raise self._failure(f"Kustomer returned {self.name} out of {self.field} order in a window that holds "
                                    f"more than one query's results ({query.received:,} read of {query.total or '?'}): "
                                    "the sync stopped rather than miss records. Try again later, or report this.")
            if query.natural_end is False and query.first is not None and query.first == query.last:
                raise self._tie(query)
            restart = ties_at or start
            stalled = stalled + 1 if query.new == 0 and normalized(restart) == normalized(start) else 0
            if stalled >= 2:  # asked twice from the same point, nothing new, still short of what it reports
                if query.received:
                    raise self._tie(query)
                raise self._failure(f"Kustomer's search reported {query.total:,} {self.name} from {start} but "
                                    "returned none of them, three times: the sync stopped rather than skip them.")
            start = restart

    def _query(self, schema: Mapping[str, Any], window: StreamSlice, query: _Query) -> Iterable[Any]:
        page = 1
        while True:
            if page > 1 and (page * self.size > self.result_window or page > self.page_cap):
                return  # past the window: go on from the last cursor value
            response = self._page(window, page)
            if response is None:
                return
            status = response.status_code
            if status >= 400:
                if refused(self.retriever):
                    return
                if page == 1:
                    status_text, detail = kustomer_words(response)
                    raise SearchRefused(status, f"Kustomer refused the search of {self.name} (HTTP {status_text}: "
                                                f"{detail}).")
                self._cap_answer(page, f"HTTP {status}: {kustomer_words(response)[1]}")
                return
            body = page_body(response)
            meta = body.get("meta") if isinstance(body.get("meta"), Mapping) else {}
            if page == 1 and isinstance(meta.get("total"), int):
                query.total = meta["total"]
            data = body.get("data") if isinstance(body.get("data"), list) else []
            query.received += len(data)
            for record in self.retriever.record_selector.select_records(
                    response=response, stream_state={}, records_schema=schema, stream_slice=window):
                value = cursor_value(record, self.field)
                if value is not None:
                    query.first = query.first or value
                    query.last = value
                yield record
            if not data or not safe_next_link((body.get("links") or {}).get("next"), self.api_url):
                query.natural_end = True
                return
            page += 1

    def _page(self, window: StreamSlice, page: int) -> Any:
        """A page's response; a timed-out one (`meta.timed_out`: a partial result) is asked again with backoff, and
        one that stays timed out fails the stream as a transient error (its state stays where it was). None where a
        page past the first kept failing: taken as the cap."""
        requester = self.retriever.requester if page == 1 else self.later_pages
        for attempt in range(self.timed_out_retries + 1):
            if attempt:
                time.sleep(min(60.0, 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0))
            try:
                response = requester.send_request(stream_state={}, stream_slice=window,
                                                  request_params={"page": page, "pageSize": self.size})
            except AirbyteTracedException as error:
                if page == 1 or error.failure_type == FailureType.config_error:
                    raise
                self._cap_answer(page, "failing after retries")
                return None
            if response is None or response.status_code >= 400 or not (page_body(response).get("meta") or {}).get("timed_out"):
                return response
        raise AirbyteTracedException(
            message=f"Kustomer's search kept timing out on page {page} of {self.name} ({self.timed_out_retries + 1} "
            "tries): its answers were partial. The stream keeps its state; the next sync reads on from there.",
            failure_type=FailureType.transient_error)

    def _cap_answer(self, page: int, answer: str) -> None:
        self.sync.warn_once(("search cap", self.name), f"{self.name}: Kustomer's search answered page {page} "
                            f"({page * self.size:,} results in) with {answer}; taken as the limit of its result "
                            "window, the query goes on from the last updatedAt read. Nothing is skipped.")

    def _tie(self, query: _Query) -> AirbyteTracedException:
        return self._failure(f"More than {query.received:,} {self.name} share {self.field} {query.first}, more than "
                             "Kustomer's search returns for one query: the connector cannot page past them and stopped "
                             "rather than skip records. Report this with the stream and timestamp.")

    @staticmethod
    def _failure(message: str) -> AirbyteTracedException:
        return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.system_error)

    @staticmethod
    def _from(window: StreamSlice, start: str) -> StreamSlice:
        if start == window.cursor_slice["start_time"]:
            return window
        return StreamSlice(partition=window.partition, cursor_slice={**window.cursor_slice, "start_time": start},
                           extra_fields=window.extra_fields)


def search_reader(retriever: WindowRetriever, search: Any, later_pages: Any, limits: Mapping[str, Any]) -> SearchReader:
    return SearchReader(retriever.name, search, later_pages, limits, int(limits["page_size"]),
                        retriever.config["api_url"], retriever.sync)


def checkpointed(owner: WindowRetriever, records: Iterable[Any], window: Any) -> Iterable[Any]:
    """Records of a window in cursor order, with the stream's cursor told every `checkpoint_records` (a parent copy:
    every 100 parent records, each a partition of its substream, whose states hold this position) or
    `checkpoint_seconds` that the window is read up to the last cursor value."""
    bounds, partition = getattr(window, "cursor_slice", None) or {}, getattr(window, "partition", None) or {}
    if owner.cursor is None or "start_time" not in bounds or partition:
        yield from records  # no cursor window, or one per partition: checkpointed when it closes
        return
    rhythm = CheckpointRhythm(100 if owner.parent_copy else owner.checkpoint_records, owner.checkpoint_seconds)
    last = ""
    records = iter(records)
    for record in records:
        yield record
        value = cursor_value(record, owner.cursor_field)
        if value is None:
            continue
        if value < last:  # out of order: a checkpoint could skip what comes later
            owner.out_of_order()
            yield from records
            return
        last = value
        if rhythm.due():
            owner.checkpoint_at(window, last)


class KlassProgress:
    """What each klass's search windows have read (kobjects: a partition per klass under one cursor that the CDK moves
    only once every klass is read): `updatedAt` ranges read whole, and where the windows being read stand."""

    def __init__(self, resumed: Mapping[str, List[list]]) -> None:
        self._covered = {k: list(v) for k, v in resumed.items()}
        self._reading: dict[tuple, str] = {}  # (klass, window start) -> the last cursor value read in it
        self._lock = threading.Lock()

    def unread_from(self, klass: str, start: str, end: str) -> Optional[str]:
        """Where a klass's window [start, end] is not read yet, or None."""
        with self._lock:
            ranges = list(self._covered.get(klass, ()))
        at, moved = start, True
        while moved:
            moved = False
            for low, high in ranges:
                if low <= at < high:  # one form, so in time order as strings
                    at, moved = high, True
        return None if at >= end else at

    def reading(self, key: tuple, value: Optional[str]) -> None:
        with self._lock:
            if value is None:
                self._reading.pop(key, None)
            else:
                self._reading[key] = value

    def read_whole(self, klass: str, begin: str, end: str) -> None:
        with self._lock:
            self._covered.setdefault(klass, []).append([begin, end])

    def ranges(self) -> dict[str, List[list]]:
        with self._lock:
            ranges = {klass: list(read) for klass, read in self._covered.items()}
            for (klass, begin), last in self._reading.items():
                ranges.setdefault(klass, []).append([begin, last])
        return ranges


def searched(owner: WindowRetriever, reader: SearchReader, progress: KlassProgress, schema: Mapping[str, Any],
             window: Any) -> Iterable[Any]:
    """A search window of `owner`'s stream, read exactly and checkpointed: by the last cursor value read, or, for a
    klass's window (kobjects), by what each klass's windows have read (`search` in the state: a resumed window starts
    where its range was read up to, a window read whole is skipped; the stream's cursor stays where the sync began)."""
    bounds, partition = getattr(window, "cursor_slice", None) or {}, getattr(window, "partition", None) or {}
    if owner.cursor is None or "start_time" not in bounds or "klass" not in partition:
        yield from checkpointed(owner, reader.read(schema, window), window)
        return
    klass = window.partition["klass"]
    start, end = normalized(window.cursor_slice["start_time"]), normalized(window.cursor_slice["end_time"])
    begin = progress.unread_from(klass, start, end)
    if begin is None:
        return  # read whole by the attempt this one resumes
    if begin != start:
        window = StreamSlice(partition=window.partition, cursor_slice={**window.cursor_slice, "start_time": begin},
                             extra_fields=window.extra_fields)
    key, last = (klass, begin), ""
    for record in reader.read(schema, window):
        yield record
        value = cursor_value(record, owner.cursor_field)
        if last is not None and value is not None:
            if value < last:  # out of order: what was read so far stands, the rest counts once read whole
                owner.out_of_order()
                last = None
            else:
                last = value
                progress.reading(key, value)
        if owner.rhythm.due():
            yield from _klass_state(owner, progress)
    progress.reading(key, None)
    if not refused(reader.retriever):
        progress.read_whole(klass, begin, end)


def _klass_state(owner: WindowRetriever, progress: KlassProgress) -> Iterable[Any]:
    state = owner.cursor_state()
    if state is None:
        return
    if "state" not in state:  # a first sync, searched from `start_date`
        if not owner.config.get("start_datetime"):
            return
        state["state"] = {owner.cursor_field: normalized(owner.config["start_datetime"])}
    yield state_message(owner.name, klass_search_state(state, progress.ranges()))


@dataclass
class SearchWindowRetriever(WindowRetriever):
    """Searched streams (`records`: the search's SimpleRetriever of the manifest), each window read exactly
    (SearchReader) and checkpointed within it (searched). With `deletions` (the audit log's deletes), a marker after
    each window for each record of `deletion_type` hard-deleted in it: `deleted`, `deletedAt` and
    `_ab_cdc_deleted_at` set, Airbyte's convention for a deduplicated destination to drop the row."""

    later_pages: Optional[Any] = None  # the requester of pages past the first
    limits: Mapping[str, Any] = field(default_factory=dict)  # the manifest's `search_limits`
    deletions: Optional[Retriever] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self.reader = search_reader(self, self.records, self.later_pages, self.limits)
        self.progress = KlassProgress(self.plan.searched_klasses)
        self.type = parameters.get("deletion_type")
        self.audit = AuditLogDeletes(self.deletions) if self.deletions is not None else None

    def read_window(self, retriever: Retriever, schema: Mapping[str, Any], window: Any) -> Iterable[Any]:
        yield from searched(self, self.reader, self.progress, schema, window)
        if self.audit is not None:
            yield from self._markers(window)

    def _markers(self, window: Any) -> Iterable[Record]:
        rows = self.audit.read(window.cursor_slice["start_time"], window.cursor_slice["end_time"])
        if rows is None:
            self.sync.warn_once(("markers", self.name), f"Deletion markers of {self.type}s are skipped for this sync: "
                                f"{self.audit.unavailable}. The `deletions` stream lists every hard delete it can read.")
            return
        for row in rows:
            if row.get("objectType") == self.type and row.get("objectId"):
                at = row.get("createdAt")
                yield Record(data={"id": row["objectId"], "type": self.type, "deleted": True, "deletedAt": at,
                                   "deletedById": row.get("userId"), "updatedAt": at, "_ab_cdc_deleted_at": at},
                             stream_name=self.name, associated_slice=window)
