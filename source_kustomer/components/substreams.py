"""Streams read per parent record: per conversation (its events and forwards: the conversations they are read for,
their checkpoints, and stopping at a refusal rather than ask once per conversation), and the custom-attribute
metadata of each resource and klass."""

import copy
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from airbyte_cdk.sources.declarative.partition_routers.substream_partition_router import SubstreamPartitionRouter
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.types import StreamSlice

from source_kustomer.components.errors import refused
from source_kustomer.components.lists import PARENT_LIST_STATE
from source_kustomer.components.state import state_message
from source_kustomer.components.windows import WindowRetriever


@dataclass
class ConversationPartitionRouter(SubstreamPartitionRouter):
    """A partition per conversation, which its stream can stop (`stop`: no more conversations are read, and the parent
    state it reports is the one it started with, so the stream's state stays where it was).

    The parent state it reports for each partition is what the substream's state holds once every partition made up
    to it is read (the CDK's per-partition cursor keeps that low-water mark). A parent read by search moves its cursor
    as it goes (checkpointed); a parent read from its list has no cursor to move until its end, so the list's
    position, which each listed record carries (`PARENT_LIST_STATE`, ListReader), stands for it. The stock router
    reports only the parent's cursor."""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._stopped = False
        self._initial = copy.deepcopy(super().get_stream_state())  # the parents' states the sync was given
        self._positions: dict[str, Mapping[str, Any]] = {}  # parent stream -> its list's state, while it is read

    def stop(self) -> None:
        self._stopped = True

    def stream_slices(self) -> Iterable[StreamSlice]:
        parent = self.parent_stream_configs[0].stream.name
        slices = iter(super().stream_slices())
        current = next(slices, None)
        while current is not None and not self._stopped:
            following = next(slices, None)  # one ahead: once the last is read, the parent's own state says so
            position = (current.extra_fields or {}).get(PARENT_LIST_STATE)
            if following is not None and position:
                self._positions[parent] = position
            else:
                self._positions.pop(parent, None)
            yield current
            current = following

    def get_stream_state(self) -> Optional[Mapping[str, Any]]:
        if self._stopped:
            return copy.deepcopy(self._initial)
        return {**(super().get_stream_state() or {}), **copy.deepcopy(self._positions)}


@dataclass
class ConversationSubstreamRetriever(WindowRetriever):
    """A conversation's rows (a partition), then every `checkpoint_records` rows of the stream (or seconds) its
    state: the CDK's per-partition cursor saves it at most every 10 minutes. Once Kustomer refuses a request (a missing
    role: conversation events need event.read, forwards draft.read), the stream's other partitions are skipped without
    a request and the conversations are read no further (`partition_router`), so the stream keeps the state it
    started with: granted the role, the next sync reads what this one could not. Otherwise a refused stream would make
    one refused request per conversation, out of the org's budget."""

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[Any]:
        if not refused(self.records):
            yield from super().read_records(records_schema, stream_slice)
        if refused(self.records) and isinstance(self.partition_router, ConversationPartitionRouter):
            self.partition_router.stop()

    def read_window(self, retriever: Retriever, schema: Mapping[str, Any], window: Any) -> Iterable[Any]:
        count = 0
        for record in retriever.read_records(schema, window):
            count += 1
            yield record
        if not self.rhythm.due(count):
            return
        state = self.cursor_state()
        if state and state.get("use_global_cursor") and state.get("parent_state"):
            yield state_message(self.name, state)


@dataclass
class MetadataResourcesPartitionRouter(SubstreamPartitionRouter):
    """A partition per resource that has custom-attribute metadata: the fixed ones (`resources`), then `kobject.<name>`
    for each klass the parent (klasses) lists. The stock router yields only the parent's."""

    resources: tuple = ("customer", "conversation", "message", "company")

    def stream_slices(self) -> Iterable[StreamSlice]:
        for resource in self.resources:
            yield StreamSlice(partition={"resource": resource}, cursor_slice={})
        for klass in super().stream_slices():
            yield StreamSlice(partition={"resource": f"kobject.{klass.partition['klass']}"}, cursor_slice={})
