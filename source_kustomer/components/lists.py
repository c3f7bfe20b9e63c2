"""Lists paged by page number (`page`, `pageSize`), read as fast as the rate budget allows and exact while the org
changes, checkpointed by position; and the retriever of every listed stream."""

import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Optional

import isodate
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components.audit_log import AuditLogDeletes
from source_kustomer.components.errors import refused
from source_kustomer.components.records import page_body
from source_kustomer.components.search import KlassProgress, SearchRefused, search_reader, searched
from source_kustomer.components.state import (
    CheckpointRhythm, ListCheckpoint, ListPosition, klass_list_state, list_state, state_message,
)
from source_kustomer.components.timestamps import kustomer_timestamp, normalized, to_utc
from source_kustomer.components.windows import WindowRetriever

LOGGER = logging.getLogger("airbyte")
# A parent copy's records carry where its list would resume, for the substream's state (ConversationPartitionRouter).
PARENT_LIST_STATE = "_parent_list_state"


@dataclass
class ListWindowRetriever(WindowRetriever):
    """Listed streams: `records` is a list paged by page number, read by ListReader; with `search`, a window that
    starts less than `search_within` ago is searched instead (a first sync from a recent `start_date`: the same
    records, far fewer requests), and so is every window of a stream whose later syncs search (routing's work
    sessions and items); should Kustomer refuse the search context (a 4xx other than a missing role), the list is
    read instead. With `shifts` (the audit log's deletes), the list checks whether deletes of `deletion_type`
    shifted its pages while it was read."""

    search: Optional[Retriever] = None
    later_pages: Optional[Any] = None  # the search's requester of pages past the first
    limits: Mapping[str, Any] = field(default_factory=dict)  # the manifest's `search_limits`
    search_within: Optional[str] = None  # these four: the manifest's `tuning`
    shifts: Optional[Retriever] = None
    verify_pages: Optional[int] = None  # pages between two looks at the audit log for deletes that shift pages
    index_lag_seconds: Optional[float] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self.page_size = int(parameters.get("page_size") or 100)
        self.type = parameters.get("deletion_type")
        self.reader = search_reader(self, self.search, self.later_pages, self.limits) if self.search is not None else None
        self.progress = KlassProgress(self.plan.searched_klasses)
        self.audit = AuditLogDeletes(self.shifts) if self.shifts is not None and self.type else None
        self._lock = threading.Lock()
        resumed = self.plan.list or ListCheckpoint()
        self._klasses, self._done = dict(resumed.klasses), set(resumed.done)  # kobjects: per klass
        self.search_refused = False  # the search context was refused: the list is read instead

    def _window_retriever(self, window: Any) -> Retriever:
        start = (getattr(window, "cursor_slice", None) or {}).get("start_time")
        within = datetime.now(timezone.utc) - isodate.parse_duration(self.search_within)
        return self.search if self.search is not None and start and to_utc(start) >= within else self.records

    def retriever_for(self, window: Any) -> Retriever:
        return self.records if self.search_refused else self._window_retriever(window)

    def close_window(self, window: Any, retriever: Retriever) -> None:
        super().close_window(window, self.records if self.search_refused else retriever)

    def read_window(self, retriever: Retriever, schema: Mapping[str, Any], window: Any) -> Iterable[Any]:
        if retriever is self.search:
            try:
                yield from searched(self, self.reader, self.progress, schema, window)
                return
            except SearchRefused as refusal:  # a context this org's search does not serve: the list has it all
                self.search_refused = True
                self.sync.warn_once(("search refused", self.name), f"{refusal.message} {self.name} is read from its "
                                    "list instead for the rest of this sync: the whole list, of which only what "
                                    "changed is passed on.")
        yield from ListReader(self, schema, window).read()

    def klass_positions(self, klass: str, position: Optional[ListPosition]) -> ListCheckpoint:
        """Records a klass's position (None: read whole); every klass's, this attempt's and the resumed one's."""
        with self._lock:
            if position is None:
                self._done.add(klass)
                self._klasses.pop(klass, None)
            else:
                self._klasses[klass] = position
            return ListCheckpoint(klasses=dict(self._klasses), done=sorted(self._done))

    def klass_done(self, klass: str) -> bool:
        with self._lock:
            return klass in self._done


class ListReader:
    """One slice of a list paged by page number, read in page order with pages requested ahead.

    Speed: as many pages in flight as the rate budget can serve in one response time (OrgBudget.pages_ahead), at
    most `num_workers`; the budget still paces every request. Until the list's length is known (`meta.totalPages`),
    the look-ahead grows with the pages read, so a short list costs no request past its end and a long one at most 2%.

    Exact while the list changes: a page holds what is at its offset when it is served. A record added before the
    reading position pushes records onto the next page, where they are read twice and emitted once (ids of recent
    pages are kept). A record deleted before it pulls a record back onto a page already read: every `verify_pages`
    pages and at the end, the audit log says whether records of the stream's type were deleted meanwhile (in an id-
    ordered list, only those already passed count); if so, the pages since the last look are read again from as many
    pages earlier as were deleted, and what was missed is emitted. Without the audit log (a missing role), one warning.

    Checkpoints: every `checkpoint_records` records (or seconds), a state with the stream's cursor at the slice's
    start and the list's position (state.ListCheckpoint); a resumed sync reads on from there, from earlier if the
    audit log shows deletes since. A parent copy (conversations read for a substream) emits no state: each record
    carries its position (PARENT_LIST_STATE) to the substream's state instead."""

    def __init__(self, owner: ListWindowRetriever, schema: Mapping[str, Any], stream_slice: Any) -> None:
        self.owner, self.retriever, self.schema, self.slice = owner, owner.records, schema, stream_slice
        self.name, self.size, self.budget = owner.name, owner.page_size, owner.sync.budget
        self.bounds = getattr(stream_slice, "cursor_slice", None) or {}
        partition = dict(getattr(stream_slice, "partition", None) or {})
        # A list of one klass of a stream partitioned by klass (kobjects) keeps its position under the klass's name.
        self.klass = partition.pop("klass", None)
        self.positioned = bool(self.bounds.get("start_time")) and not any(partition.values())  # no parent_slice either
        self.last_page: Optional[int] = None  # from `meta.totalPages`
        self.ascending, self.max_id, self.furthest = True, "", 0  # whether the ids read ascend, the largest, the page
        self.counted: set[str] = set()  # the audit log's deletes already counted
        self.most = owner.config.get("num_workers") or owner.most_in_flight

    def read(self) -> Iterable[Any]:
        if self.positioned and self.klass is not None and self.owner.klass_done(self.klass):
            return  # read whole by the interrupted attempt this one resumes
        with ThreadPoolExecutor(max_workers=self.most, thread_name_prefix=f"pages-{self.name}") as pool:
            yield from self._read(pool)
        if self.klass is not None and self.positioned and not refused(self.retriever):  # read whole: a resume skips it
            yield from self._state(None)

    def _read(self, pool: ThreadPoolExecutor) -> Iterable[Any]:
        position = self._resume()
        page, span_from, since = position.page, position.first_unverified, position.since
        tag = self._tag(position)
        seen: dict[str, int] = {}  # id -> page read on, since the last verified page (and the two before it)
        # A rhythm of this slice's own: each klass's list (kobjects) saves its position as often as a list does.
        rhythm = CheckpointRhythm(self.owner.checkpoint_records, self.owner.checkpoint_seconds)
        verify_in, rewinds, stale = self.owner.verify_pages, 0, 0
        while page is not None:
            pages, restart = self._pages(pool, page), None
            try:
                for number, response in pages:
                    body = page_body(response)
                    data = body.get("data") if isinstance(body.get("data"), list) else []
                    fresh = number > self.furthest
                    self._learn(number, body, data)
                    # A page number Kustomer did not honour (the same records again and again) would never end.
                    stale = stale + 1 if fresh and data and all(str(r.get("id")) in seen for r in data if isinstance(r, Mapping)) else 0
                    if stale >= 3:
                        raise AirbyteTracedException(
                            message=f"Kustomer answered pages {number - 2} to {number} of {self.name} with records "
                            "already read; the sync stopped rather than loop. Try again later, or report this.",
                            failure_type=FailureType.system_error)
                    count = 0
                    for record in self.retriever.record_selector.select_records(
                            response=response, stream_state={}, records_schema=self.schema, stream_slice=self.slice):
                        key = record.get("id")
                        if key is not None and key in seen:
                            continue
                        seen[key] = number
                        count += 1
                        if tag is not None:
                            record.data[PARENT_LIST_STATE] = tag
                        yield record
                    page, verify_in = number + 1, verify_in - 1
                    ended = not data or not (body.get("links") or {}).get("next") or page > (self.last_page or page)
                    if (ended or verify_in <= 0) and number > 1:  # a list of one page has no page boundary to shift
                        checked_at, deleted = time.time(), self._deleted_since(since)
                        if deleted and rewinds < 2:  # read the unverified pages again, from earlier
                            restart, rewinds = max(1, span_from - math.ceil(deleted / self.size)), rewinds + 1
                            LOGGER.info(f"{self.name}: {deleted} deleted while pages {span_from}-{number} were "
                                        f"read; reading them again from page {restart}.")
                            span_from, since, verify_in = restart, checked_at, self.owner.verify_pages
                            break
                        if deleted:
                            self.owner.sync.warn_once(("churn", self.name), f"{self.name}: records kept being deleted "
                                                      "while the list was read; a record may have been missed where "
                                                      "pages shifted. A full refresh (or a reset of the stream) reads it.")
                        span_from, since, verify_in, rewinds = page, checked_at, self.owner.verify_pages, 0
                        seen = {key: at for key, at in seen.items() if at >= number - 2}
                    if ended:
                        break
                    tag = self._tag(ListPosition(page, span_from, since))
                    if rhythm.due(count):
                        yield from self._state(ListPosition(page, span_from, since))
            finally:
                pages.close()
            page = restart

    def _resume(self) -> ListPosition:
        """The first page to read, the first not verified, and since when deletes matter."""
        now = time.time()
        resumed = self.owner.plan.list if self.positioned else None
        position = (resumed.klasses.get(self.klass) if self.klass is not None else resumed.position) if resumed else None
        if position is None:
            return ListPosition(1, 1, now)
        deleted = self._deleted_since(position.since, passed_only=False)
        page = position.page
        if deleted is None:  # unknown: a page earlier, for what up to a page of deletes pulled back
            page = max(1, page - 1)
        elif deleted:
            page = max(1, position.first_unverified - math.ceil(deleted / self.size))
        where = self.name + (f" (klass {self.klass})" if self.klass is not None else "")
        LOGGER.info(f"{where}: resuming the list at page {page} (checkpointed at page {position.page}).")
        return ListPosition(page, page, now)

    def _pages(self, pool: ThreadPoolExecutor, first: int) -> Iterable[tuple[int, Any]]:
        """(page number, response) in page order, with up to `_ahead()` requests in flight."""
        pending, number, done = deque(), first, 0
        try:
            while True:
                while len(pending) < self._ahead(done) and (self.last_page is None or number <= self.last_page):
                    pending.append((number, pool.submit(self._request, number)))
                    number += 1
                if not pending:
                    return
                page, future = pending.popleft()
                yield page, future.result()
                done += 1
        finally:
            for _, future in pending:
                future.cancel()  # those already sent are answered and dropped

    def _request(self, page: int) -> Any:
        with self.owner.in_flight:
            return self.retriever.requester.send_request(stream_state={}, stream_slice=self.slice,
                                                         request_params={"page": page, "pageSize": self.size})

    def _ahead(self, done: int) -> int:
        # Until the end is known, the look-ahead grows with the pages read: a request past the end costs 2% at most.
        ramp = self.most if self.last_page is not None else min(1 + done // 4, 4 + done // 50)
        return max(1, min(self.budget.pages_ahead(), self.most, ramp))

    def _learn(self, number: int, body: Mapping[str, Any], data: list) -> None:
        total = (body.get("meta") or {}).get("totalPages")
        if isinstance(total, int) and total > 0:
            self.last_page = total
        if number <= self.furthest:  # read again after a rewind
            return
        self.furthest = number
        for resource in data:
            key = str(resource.get("id", "")) if isinstance(resource, Mapping) else ""
            self.ascending = self.ascending and key > self.max_id
            self.max_id = max(self.max_id, key)

    def _deleted_since(self, since: float, passed_only: bool = True) -> Optional[int]:
        """How many records of the stream's type the audit log says were deleted since `since` (those already read,
        in an id-ordered list), or None where unknown."""
        audit, kind, lag = self.owner.audit, self.owner.type, self.owner.index_lag_seconds
        if audit is None:
            return None
        rows = audit.read(kustomer_timestamp(datetime.fromtimestamp(since - lag, timezone.utc)),
                          kustomer_timestamp(datetime.now(timezone.utc) + timedelta(seconds=lag)))
        if rows is None:
            self.owner.sync.warn_once(("shifts", self.name), f"{self.name} is read without Kustomer's audit log "
                                      f"({audit.unavailable}), which tells when deletes shift the pages of a list being "
                                      "read: a record deleted during the read may make it miss another, until a later "
                                      "full refresh.")
            return None
        passed = passed_only and self.ascending
        new = [row for row in rows if row.get("objectType") == kind and row.get("id") not in self.counted
               and (not passed or str(row.get("objectId", "")) <= self.max_id)]
        self.counted.update(row.get("id") for row in new)  # the windows overlap by the index lag: each counts once
        return len(new)

    def _start(self) -> str:
        return normalized(self.bounds["start_time"])

    def _tag(self, position: ListPosition) -> Optional[dict]:
        """A parent copy's position, as the parent's state in its substream's state: the list's form of state."""
        if not (self.positioned and self.owner.parent_copy):
            return None
        field_ = self.owner.cursor_field if self.owner.cursor is not None else "updatedAt"
        return list_state(field_, self._start(), ListCheckpoint(self.bounds.get("end_time"), position))

    def _state(self, position: Optional[ListPosition]) -> Iterable[Any]:
        """The state at this position (None: the klass is read whole). The stream's cursor stays at the list's start,
        the form in which every version reads a state too old for search as "list from here"."""
        if not self.positioned or self.owner.cursor is None or self.owner.parent_copy:
            return
        end, field_ = self.bounds.get("end_time"), self.owner.cursor_field
        if self.klass is None:
            blob = list_state(field_, self._start(), ListCheckpoint(end, position))
        else:
            checkpoint = self.owner.klass_positions(self.klass, position)
            checkpoint.end = end
            blob = klass_list_state(field_, self._start(), checkpoint)
        yield state_message(self.name, blob)
