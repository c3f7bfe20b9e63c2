"""conversation_times, the handle times: by search (context `conversation_time`, 500 a page) within the two years
search serves them, by conversation (`GET /v1/conversations/{id}/times`, one request each) before that, or when
Kustomer refuses the context."""

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Optional

import isodate
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.types import Record, StreamSlice

from source_kustomer.components.errors import refused
from source_kustomer.components.lists import PARENT_LIST_STATE, ListReader, ListWindowRetriever
from source_kustomer.components.search import SearchRefused, checkpointed, search_reader
from source_kustomer.components.state import CheckpointRhythm, ListCheckpoint, list_state, state_message
from source_kustomer.components.timestamps import kustomer_timestamp, normalized, to_utc
from source_kustomer.components.windows import WindowRetriever

STEP = timedelta(days=30)  # the search's windows within a slice that spans more (a first sync's one slice)


@dataclass
class ConversationTimesRetriever(WindowRetriever):
    """The time records created in a window, exactly (SearchReader: the same rules as every searched stream). Time
    records are created by Kustomer and never edited, so their `createdAt` is an exact cursor. Search serves the last
    two years (`search_within`) of them only: a window that starts earlier (a first sync's one slice) first reads, by
    conversation, the times of the conversations created before then (the conversations' list, `listed`, whose
    position the state keeps), then searches the rest 30 days at a time.

    By conversation also, for the conversations changed in a window (`changed`, a search of conversations): when
    Kustomer refuses the `conversation_time` context (for the rest of the sync, one warning), and on the first sync
    from a state of the releases that read every time by conversation (its cursor was the conversation's updatedAt,
    so this sync reads what that release would have, and searches too). Rows read by conversation carry
    `conversationUpdatedAt`; searched rows do not have it."""

    later_pages: Optional[Any] = None  # the search's requester of pages past the first
    limits: Mapping[str, Any] = field(default_factory=dict)  # the manifest's `search_limits`
    search_within: Optional[str] = None  # these four: the manifest's `tuning`
    per_conversation: Optional[Retriever] = None  # GET /v1/conversations/{id}/times
    changed: Optional[Retriever] = None  # conversations searched by `conversation_updated_at`
    listed: Optional[Retriever] = None  # a first sync's: the conversations' list (page numbers)
    listed_shifts: Optional[Retriever] = None  # and the audit log's deletes of conversations, which shift its pages
    verify_pages: Optional[int] = None
    index_lag_seconds: Optional[float] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self.reader = search_reader(self, self.records, self.later_pages, self.limits)
        self.conversations = search_reader(self, self.changed, None, self.limits) if self.changed is not None else None
        self.fallback: Optional[str] = None  # why this sync reads by conversation
        # The list read as a parent copy: its position goes into this stream's state (ListReader, PARENT_LIST_STATE).
        self.lister = ListWindowRetriever(
            records=self.listed, config=self.config, shifts=self.listed_shifts, most_in_flight=self.most_in_flight,
            verify_pages=self.verify_pages, index_lag_seconds=self.index_lag_seconds,
            checkpoint_records=self.checkpoint_records, checkpoint_seconds=self.checkpoint_seconds,
            parameters={"name": "conversations", "stream_name": self.name, "deletion_type": "conversation"},
        ) if self.listed is not None else None
        self._lock = threading.Lock()

    def close_window(self, window: Any, retriever: Retriever) -> None:
        if self.listed is not None and refused(self.listed):
            return  # the conversations' list was refused: what it would have given stays to be read
        super().close_window(window, self.per_conversation if self.fallback else self.records)

    def read_window(self, retriever: Retriever, schema: Mapping[str, Any], window: Any) -> Iterable[Any]:
        start, end = to_utc(window.cursor_slice["start_time"]), to_utc(window.cursor_slice["end_time"])
        horizon = datetime.now(timezone.utc) - isodate.parse_duration(self.search_within)
        if start < horizon:  # before what search serves: by conversation, for those created before then
            horizon_at = kustomer_timestamp(horizon)
            yield from self._listed(schema, window, normalized(start), horizon_at)
            if refused(self.listed):
                return
            if self.cursor is not None:
                self.checkpoint_at(window, horizon_at)
            start = horizon
        while start <= end:
            sub = StreamSlice(partition=window.partition, extra_fields=window.extra_fields, cursor_slice={
                **window.cursor_slice, "start_time": kustomer_timestamp(start),
                "end_time": kustomer_timestamp(min(start + STEP, end))})
            yield from self._recent(schema, window, sub)
            start += STEP + timedelta(milliseconds=1)

    def _recent(self, schema: Mapping[str, Any], window: Any, sub: StreamSlice) -> Iterable[Any]:
        if self.fallback is None:
            try:
                yield from checkpointed(self, self.reader.read(schema, sub), window)
            except SearchRefused as refusal:
                self._fall_back(refusal.message)
        if self.fallback is not None or self.plan.by_conversation_first:
            changed = self.conversations.read({}, sub) if self.conversations is not None else ()
            yield from self._by_conversation(schema, changed)

    def _fall_back(self, why: str) -> None:
        with self._lock:
            self.fallback = self.fallback or why
        self.sync.warn_once(("times fallback", self.name), f"{self.name}: {why} This sync reads the times of each "
                            "conversation changed since the last one instead, one request per conversation.")

    def _listed(self, schema: Mapping[str, Any], window: Any, start: str, horizon: str) -> Iterable[Any]:
        """The times, created from `start` to `horizon`, of the conversations listed that were created before the
        horizon and updated since `start`; a state with the list's position every `checkpoint_records` rows."""
        listed = ListReader(self.lister, {}, StreamSlice(partition={}, cursor_slice={
            "start_time": start, "end_time": window.cursor_slice["end_time"]}))
        rows = (row for row in listed.read() if isinstance(row, Record))
        wanted = (row for row in rows if str(row.get("createdAt", "")) < horizon and str(row.get("updatedAt", "~")) >= start)
        rhythm = CheckpointRhythm(self.checkpoint_records, self.checkpoint_seconds)
        for conversation, times in self._each_conversation(schema, wanted):
            count = 0
            for time_record in times:
                created = time_record.get("createdAt")
                if not isinstance(created, str) or start <= created < horizon:  # no time: kept rather than lost
                    count += 1
                    yield time_record
            position = conversation.get(PARENT_LIST_STATE)
            if position and self.cursor is not None and rhythm.due(count):
                blob = list_state(self.cursor_field, start, ListCheckpoint.parse(position["list"]) or ListCheckpoint())
                yield state_message(self.name, blob)

    def _by_conversation(self, schema: Mapping[str, Any], conversations: Iterable[Any]) -> Iterable[Any]:
        for _, times in self._each_conversation(schema, (c for c in conversations if isinstance(c, Mapping))):
            yield from times

    def _each_conversation(self, schema: Mapping[str, Any], conversations: Iterable[Mapping[str, Any]]
                           ) -> Iterable[tuple[Mapping[str, Any], list]]:
        """(conversation, its time records) in the conversations' order, several requested at once: as many as the
        rate budget serves in one response time, as list pages are (OrgBudget.pages_ahead)."""
        most = self.config.get("num_workers") or self.most_in_flight
        fetch: Callable[[Mapping[str, Any]], list] = lambda c: self._times_of(schema, c)
        with ThreadPoolExecutor(max_workers=most, thread_name_prefix=f"times-{self.name}") as pool:
            pending: deque = deque()
            for conversation in conversations:
                pending.append((conversation, pool.submit(fetch, conversation)))
                while len(pending) >= max(1, min(most, self.sync.budget.pages_ahead())):
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()

    def _times_of(self, schema: Mapping[str, Any], conversation: Mapping[str, Any]) -> list:
        partition = StreamSlice(partition={"conversation_id": conversation["id"]}, cursor_slice={})
        with self.in_flight:
            rows = list(self.per_conversation.read_records(schema, partition))
        for row in rows:
            getattr(row, "data", row).setdefault("conversationUpdatedAt", conversation.get("updatedAt"))
        return rows
