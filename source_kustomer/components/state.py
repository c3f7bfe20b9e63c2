"""Every state the connector reads or writes, in one place, and the plan a sync makes of the state it is given.

A stream's state is the CDK's cursor (`{"<cursor field>": <time>}`), to which a read interrupted mid-way adds where
it stood. The shapes, each versioned (`"v": 1`); a shape this version cannot read is read as "from the beginning of
that read", which reads again and never loses:

- `list` (ListCheckpoint): a list read by page number, checkpointed mid-way: `{"<cursor>": <the list's start>,
  "list": {"v": 1, "page": <next page>, "from": <first page not verified>, "since": <when deletes matter from>,
  "end": <the first attempt's end>}}`; per klass (kobjects): `{"use_global_cursor": true, "state": {"<cursor>":
  <start>}, "list": {"v": 1, "end": ..., "klasses": {<klass>: {"page", "from", "since"}}, "done": [<klass>, ...]}}`.
- `search` (KlassRanges): kobjects searched klass by klass: `{..., "search": {"v": 1, "klasses": {<klass>:
  [[<from>, <to>], ...]}}}`, the `updatedAt` ranges each klass's windows have read whole.
- A substream's state is the CDK's per-partition cursor's; its `parent_state[<parent>]` may hold the parent's
  `list` (the conversations listed for a per-conversation stream).
- The archived source-kustomer-singer's state, `{"bookmarks": {<stream>: <time>}}`, reads as `{"updatedAt": <time>}`.

SyncPlan.from_state turns the state a sync is given into what the CDK's cursors read (the cursor) and what our
readers read (the rest), and SourceKustomer passes the plan to the components as the one config key `sync_plan`.
"""

import copy
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from airbyte_cdk.models import (
    AirbyteMessage, AirbyteStateBlob, AirbyteStateMessage, AirbyteStateType, AirbyteStreamState, StreamDescriptor,
    Type,
)

from source_kustomer.components.timestamps import kustomer_timestamp, merged, to_utc

VERSION = 1
CURSORS = ("updatedAt", "createdAt", "conversationUpdatedAt", "publishedAt")  # the manifest's cursor fields
# The archived connector's streams, all of them ours under the same names, with the same cursor (`updatedAt`).
# Streams whose cursor changed: stream -> (an earlier release's cursor field, this release's).
EARLIER_CURSORS = {"conversation_times": ("conversationUpdatedAt", "createdAt")}
SINGER_STREAMS = {"conversations", "customers", "kobjects", "messages", "notes", "shortcuts", "tags", "teams", "users"}


@dataclass(frozen=True)
class ListPosition:
    """Where a list read by page number stands: the next page, the first page not verified against the audit log's
    deletes, and since when deletes matter (epoch seconds)."""

    page: int
    first_unverified: int
    since: float

    def as_json(self) -> Dict[str, Any]:
        return {"page": self.page, "from": self.first_unverified,
                "since": kustomer_timestamp(datetime.fromtimestamp(self.since, timezone.utc))}

    @classmethod
    def parse(cls, blob: Any) -> Optional["ListPosition"]:
        try:
            return cls(int(blob["page"]), int(blob["from"]), to_utc(blob["since"]).timestamp())
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class ListCheckpoint:
    """`list`: one list's position, or, per klass, each klass's and the klasses read whole; `end` is where the first
    attempt ended its window, kept so that the next sync searches from there."""

    end: Optional[str] = None
    position: Optional[ListPosition] = None
    klasses: Dict[str, ListPosition] = field(default_factory=dict)
    done: List[str] = field(default_factory=list)

    def as_json(self) -> Dict[str, Any]:
        blob: Dict[str, Any] = {"v": VERSION, "end": self.end}
        if self.position is not None:
            return {"v": VERSION, **self.position.as_json(), "end": self.end}
        if self.klasses or self.done:
            blob.update(klasses={k: p.as_json() for k, p in self.klasses.items()}, done=sorted(self.done))
        return blob

    @classmethod
    def parse(cls, blob: Any) -> Optional["ListCheckpoint"]:
        """None for a shape of another version: that list is read from its first page."""
        if not isinstance(blob, Mapping) or blob.get("v") != VERSION:
            return None
        klasses = {str(k): p for k, v in (blob.get("klasses") or {}).items() if (p := ListPosition.parse(v))}
        return cls(end=blob.get("end"), position=ListPosition.parse(blob), klasses=klasses,
                   done=[str(k) for k in blob.get("done") or ()])


def list_state(cursor_field: str, start: str, checkpoint: ListCheckpoint) -> Dict[str, Any]:
    """A list's state: the stream's cursor at the list's start (what every version reads a state too old for search
    as: "list from here"), with its position."""
    return {cursor_field: start, "list": checkpoint.as_json()}


def klass_list_state(cursor_field: str, start: str, checkpoint: ListCheckpoint) -> Dict[str, Any]:
    """kobjects listed klass by klass: the per-partition cursor's global form, with every klass's position."""
    return {"use_global_cursor": True, "state": {cursor_field: start}, "list": checkpoint.as_json()}


def klass_search_state(cursor_state: Mapping[str, Any], ranges: Mapping[str, List[list]]) -> Dict[str, Any]:
    """kobjects searched klass by klass: the cursor where the sync began, with what each klass's windows read."""
    return {**cursor_state, "search": {"v": VERSION, "klasses": {k: merged(v) for k, v in ranges.items()}}}


def parse_klass_ranges(blob: Any) -> Dict[str, List[list]]:
    if not isinstance(blob, Mapping) or blob.get("v") != VERSION:
        return {}
    return {str(k): [[str(a), str(b)] for a, b in v] for k, v in (blob.get("klasses") or {}).items() if isinstance(v, list)}


def state_message(stream: str, blob: Mapping[str, Any]) -> AirbyteMessage:
    return AirbyteMessage(type=Type.STATE, state=AirbyteStateMessage(type=AirbyteStateType.STREAM, stream=AirbyteStreamState(
        stream_descriptor=StreamDescriptor(name=stream), stream_state=AirbyteStateBlob(blob))))


class CheckpointRhythm:
    """When a stream's state is due: every `records` records or `seconds`, whichever comes first (the platform and
    destinations commit on states). One per stream, shared by its readers; thread-safe."""

    def __init__(self, records: int, seconds: float) -> None:
        self.records, self.seconds = records, seconds
        self._unsaved, self._saved_at = 0, time.monotonic()
        self._lock = threading.Lock()

    def due(self, count: int = 1) -> bool:
        """`count` more records read: whether to emit a state now (then the rhythm starts over)."""
        with self._lock:
            self._unsaved += count
            if self._unsaved < self.records and time.monotonic() - self._saved_at < self.seconds:
                return False
            self._unsaved, self._saved_at = 0, time.monotonic()
            return True


@dataclass
class StreamPlan:
    """What one stream's given state asks of our readers, beyond the cursor the CDK reads."""

    list: Optional[ListCheckpoint] = None  # an interrupted list read (a substream's: its parent's list)
    searched_klasses: Dict[str, List[list]] = field(default_factory=dict)  # kobjects searched klass by klass
    list_from: Optional[str] = None  # a state older than search's reach: the list is read from this time
    by_conversation_first: bool = False  # an earlier release's state of conversation_times (components/times.py)


@dataclass
class SyncPlan:
    """The plan for this sync: per stream, what its state asks of our readers; which streams are read in full
    refresh. Made once (from_state), handed to the components as config `sync_plan` (to_config / of)."""

    streams: Dict[str, StreamPlan] = field(default_factory=dict)
    full_refresh_streams: List[str] = field(default_factory=list)

    KEY = "sync_plan"

    def stream(self, name: str) -> StreamPlan:
        return self.streams.get(name) or StreamPlan()

    def full_refresh(self, name: Optional[str]) -> bool:
        return name in self.full_refresh_streams

    def to_config(self) -> Dict[str, Any]:
        """JSON, which the manifest's Jinja reads too: `streams.<name>.list.end`, `streams.<name>.list_from`."""
        streams = {}
        for name, plan in self.streams.items():
            entry: Dict[str, Any] = {}
            if plan.list is not None:
                entry["list"] = plan.list.as_json()
            if plan.searched_klasses:
                entry["search"] = {"v": VERSION, "klasses": plan.searched_klasses}
            if plan.list_from:
                entry["list_from"] = plan.list_from
            if plan.by_conversation_first:
                entry["by_conversation_first"] = True
            streams[name] = entry
        return {"streams": streams, "full_refresh": list(self.full_refresh_streams)}

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "SyncPlan":
        blob = config.get(cls.KEY) if isinstance(config, Mapping) else None
        if not isinstance(blob, Mapping):
            return cls()
        streams = {str(name): StreamPlan(list=ListCheckpoint.parse(entry.get("list")),
                                         searched_klasses=parse_klass_ranges(entry.get("search")),
                                         list_from=entry.get("list_from"),
                                         by_conversation_first=bool(entry.get("by_conversation_first")))
                   for name, entry in (blob.get("streams") or {}).items() if isinstance(entry, Mapping)}
        return cls(streams=streams, full_refresh_streams=list(blob.get("full_refresh") or ()))

    @classmethod
    def from_state(cls, messages: List[AirbyteStateMessage], full_refresh_streams: List[str], formats: List[str],
                   delegated: Callable[[str], bool], search_reach: timedelta,
                   ) -> Tuple["SyncPlan", List[AirbyteStateMessage], Dict[str, Tuple[str, AirbyteStateMessage]]]:
        """(the plan, the states the CDK's cursors are given, stream -> (why its state cannot be used, the state))."""
        unusable = {m.stream.stream_descriptor.name: (why, m) for m in messages
                    if m.type == AirbyteStateType.STREAM and (why := unusable_reason(m, formats))}
        plans: Dict[str, StreamPlan] = {}
        given = []
        for message in messages:
            if message.type != AirbyteStateType.STREAM:
                given.append(message)
                continue
            name = message.stream.stream_descriptor.name
            if name in unusable:
                continue
            blob = _blob(message)
            plan = plans.setdefault(name, StreamPlan())
            # A list checkpointed mid-way: its position to our list reader, the cursor at the list's start to the
            # CDK, which reads the list again from there. A substream's state may hold its parent's position.
            for holder in (blob, *_parents(blob)):
                if isinstance(holder.get("list"), Mapping):
                    found = holder.pop("list")
                    plan.list = plan.list or ListCheckpoint.parse(found) or ListCheckpoint()
            if isinstance(blob.get("search"), Mapping):
                plan.searched_klasses = parse_klass_ranges(blob.pop("search"))
            if name in EARLIER_CURSORS and _earlier(blob, EARLIER_CURSORS[name][0]):
                # conversation_times read every time by conversation, its cursor the conversation's updatedAt: the
                # conversations read up to that are as far as its time records are read; the first sync from it reads
                # the changed conversations' times too, as that release would have (unless its list was under way).
                at = (_parents(blob)[0] if _parents(blob) else {}).get("updatedAt") or _earlier(blob, EARLIER_CURSORS[name][0])
                blob = {EARLIER_CURSORS[name][1]: at}
                plan.by_conversation_first = plan.list is None
            # A state too old for search is read from the list, from its time. The CDK would do the same from the
            # start date, and first save an empty state, which an interruption would then keep: not given to it.
            at = _list_time(name, blob, formats, delegated)
            horizon = kustomer_timestamp(datetime.now(timezone.utc) - search_reach)
            if at is not None and at < horizon:
                plan.list_from = at
                if delegated(name):
                    continue
            given.append(_with_state(message, blob))
        plans = {name: plan for name, plan in plans.items() if plan != StreamPlan()}
        return cls(plans, list(full_refresh_streams)), given, unusable


def singer_bookmarks(blob: Any) -> Optional[Dict[str, str]]:
    """The archived source-kustomer-singer's state, as it is or as the data of a LEGACY state message: stream ->
    bookmark, for the streams we share; None if `blob` is not one."""
    legacy = [m.get("data") for m in blob if isinstance(m, dict) and m.get("type") == "LEGACY"] if isinstance(blob, list) else [blob]
    bookmarks = next((b["bookmarks"] for b in legacy if isinstance(b, dict) and isinstance(b.get("bookmarks"), dict)), None)
    if bookmarks is None:
        return None
    return {name: bookmark for name, bookmark in bookmarks.items() if name in SINGER_STREAMS}


def unusable_reason(message: AirbyteStateMessage, formats: List[str]) -> Optional[str]:
    """Why a stream's state cannot be used (a cursor that is not a time in the manifest's formats), or None."""
    name = message.stream.stream_descriptor.name

    def bad_values(node: Any) -> List[Any]:
        if isinstance(node, list):
            return [bad for item in node for bad in bad_values(item)]
        if not isinstance(node, Mapping):
            return []
        return [value for key, value in node.items() if key in CURSORS and not is_time(value, formats)] + [
            bad for key, value in node.items() if key not in CURSORS for bad in bad_values(value)]

    bad = bad_values(_blob(message))
    if not bad:
        return None
    return (f"The saved state of stream {name} cannot be used: its cursor is {bad[0]!r}, not a date-time such as "
            f"'2024-01-31T12:00:00.000Z'. Reset (clear the data of) the stream {name} in Airbyte to sync it again from "
            "the start; the other streams are not affected.")


def is_time(value: Any, formats: List[str]) -> bool:
    for form in formats:
        try:
            datetime.strptime(value, form)
            return True
        except (TypeError, ValueError):
            continue
    return False


def _blob(message: AirbyteStateMessage) -> Dict[str, Any]:
    state = message.stream.stream_state
    state = state.__dict__ if state is not None and not isinstance(state, Mapping) else state
    return copy.deepcopy(dict(state or {}))


def _parents(blob: Mapping[str, Any]) -> List[dict]:
    """The states of a substream's parents its state holds (SubstreamPartitionRouter's `parent_state`)."""
    parents = blob.get("parent_state")
    return [parent for parent in parents.values() if isinstance(parent, dict)] if isinstance(parents, dict) else []


def _with_state(message: AirbyteStateMessage, blob: Mapping[str, Any]) -> AirbyteStateMessage:
    return AirbyteStateMessage(type=AirbyteStateType.STREAM, stream=AirbyteStreamState(
        stream_descriptor=message.stream.stream_descriptor, stream_state=AirbyteStateBlob(blob)))


def _list_time(name: str, blob: Mapping[str, Any], formats: List[str], delegated: Callable[[str], bool]) -> Optional[str]:
    """The time a listed-then-searched stream's list would be read from, in Kustomer's form: its state's cursor
    (kobjects: under `state`), a substream's parent's."""
    parents = _parents(blob)
    if parents:
        at = parents[0].get("updatedAt")
    elif delegated(name):
        cursor = blob.get("state") if isinstance(blob.get("state"), Mapping) else blob
        at = next((cursor[f] for f in CURSORS if f in cursor), None)
    else:
        return None
    return kustomer_timestamp(to_utc(at)) if is_time(at, formats) else None


def _earlier(blob: Mapping[str, Any], field_: str) -> Optional[str]:
    """The value of an earlier release's cursor field in a state (at its top, or under the global cursor's `state`)."""
    cursor = blob.get("state") if isinstance(blob.get("state"), Mapping) else blob
    return cursor.get(field_)
