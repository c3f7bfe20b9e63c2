"""The dataset's state between syncs: the test-only mutations (touch, create, delete) and the caches they make stale
(search's sorted indexes, the id-ordered lists). `Store` is a part of Dataset (data.py), not used on its own: it
works on the attributes Dataset.__init__ sets (resources, kobjects, lock, version, ...)."""

from __future__ import annotations

import bisect
import random
from datetime import datetime

from .wire import iso, micros, parse_stamp


def stamp_of(record: dict, attr: str) -> int:
    return parse_stamp(record["attributes"].get(attr)) or 0  # a missing or odd timestamp counts as 1970


class SortedIndex:
    """Records sorted by (timestamp attribute, id), ascending or descending, ties always id-ascending like a real
    index on unchanged data. A time range is two bisects and a page a slice, so a search never sorts."""

    def __init__(self, records: list[dict], attr: str, desc: bool):
        self.desc = desc
        sign = -1 if desc else 1  # descending = ascending on the negated time; the id still breaks ties upwards
        keyed = sorted((sign * stamp_of(r, attr), r["id"], n) for n, r in enumerate(records))
        self.keys = [k for k, _, _ in keyed]
        self.records = [records[n] for _, _, n in keyed]

    def window(self, lo: float, hi: float) -> tuple[int, int]:
        """[start, end) of the records whose time t has lo <= t <= hi (inclusive bounds; +-inf when open)."""
        if self.desc:
            lo, hi = -hi, -lo
        start = bisect.bisect_left(self.keys, lo)
        return start, max(start, bisect.bisect_right(self.keys, hi))


class Resources(dict):
    """Dataset.resources: stream name -> its records. Streams handed to defer() are made on first use: reading one
    of them, or the whole dict (keys, values, items, iteration, len), makes every deferred stream first, under the
    dataset's lock (the server is threaded)."""

    def __init__(self, lock):
        super().__init__()
        self._lock, self._deferred, self._building = lock, {}, False

    def defer(self, streams, build) -> None:
        """build() assigns every one of `streams` when first needed."""
        self._deferred.update(dict.fromkeys(streams, build))

    def settle(self) -> None:
        """Make every deferred stream now."""
        if not self._deferred:
            return
        with self._lock:
            if self._building or not self._deferred:  # the build itself reads its own streams as it makes them
                return
            self._building = True
            try:
                for build in dict.fromkeys(self._deferred.values()):
                    build()
                self._deferred.clear()
            finally:
                self._building = False

    def __getitem__(self, key):
        if key in self._deferred:
            self.settle()
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in self._deferred:
            self.settle()
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        return key in self._deferred or super().__contains__(key)

    def __iter__(self):
        self.settle()
        return super().__iter__()

    def __len__(self) -> int:
        self.settle()
        return super().__len__()

    def keys(self):
        self.settle()
        return super().keys()

    def values(self):
        self.settle()
        return super().values()

    def items(self):
        self.settle()
        return super().items()


class Store:
    """Dataset's mutations and caches (see the module docstring)."""

    # --- Test-only mutations between syncs. `stream` is a list name (customers, ..., klasses) or "kobjects". ---

    def all(self, stream: str) -> list[dict]:
        """The current records of a stream (a copy of the list); "kobjects": every klass's."""
        with self.lock:
            return [r for records in self._lists(stream) for r in records]

    def touch(self, stream: str, ids, at: str | datetime | None = None) -> list[dict]:
        """An update: updatedAt and modifiedAt become `at` (default: the clock's now), rev goes up by one. The same
        `at` for many ids is a burst of ties, like a bulk update."""
        with self.lock:
            stamp = self._stamp(at)
            touched = [self._change(r, updatedAt=stamp, modifiedAt=stamp) for _, r in self._lookup(stream, ids)]
            self.version += 1
            return touched

    def create(self, stream: str, count: int, at: str | datetime | None = None, klass: str | None = None,
               head: bool = False) -> list[dict]:
        """`count` new records built like the initial ones, created and updated at `at` (default: now), with ids
        above every existing id (`head`: below every one, so that they are listed first and push the rest back). Stream "kobjects" needs klass=<name>; "klasses" also opens an empty kobject list.
        Like the initial build, new conversations/messages/notes raise their parents' counters (not their
        updatedAt: touch() the parents to model that)."""
        with self.lock:
            if stream == "kobjects":
                if klass not in self.kobjects:
                    raise ValueError(f"create('kobjects', ...) needs klass= one of {sorted(self.kobjects)}")
                key, records = f"kobject.{klass}", self.kobjects[klass]
            else:
                [records], key = self._lists(stream), stream
            stamp = self._stamp(at)
            rng = random.Random(f"{self.seed}/{key}/{self._counts[key]}")  # deterministic for the same calls
            created = []
            for id_ in self._fresh_ids(count, stamp, head):
                if stream == "klasses":
                    self._klass_names.append(f"klass-{self._counts[key]}")  # the klass builder reads names[i]
                record = self._resource(key, rng, self._counts[key], id_, dict.fromkeys(
                    ("createdAt", "updatedAt", "modifiedAt"), stamp))
                self._counts[key] += 1
                attrs = record["attributes"]
                attrs.update({k: v for k, v in (("deleted", False), ("deletedAt", None)) if k in attrs})  # born live
                self._derive(key, record)
                created.append(record)
            records.extend(created)
            if stream == "customers":
                self._customers_by_id.update((r["id"], r) for r in created)  # messages look their customer up
            for name in (r["attributes"]["name"] for r in created if stream == "klasses"):
                self.kobjects[name] = []
                self._builders[f"kobject.{name}"] = (self._kobject_builder(name), f"kobject.{name}",
                                                     f"/v1/klasses/{name}", False)
                self._counts[f"kobject.{name}"] = 0
            self.version += 1
            return created

    def delete(self, stream: str, ids, hard: bool = False, at: str | datetime | None = None) -> list[dict]:
        """Soft (default): deleted = True, deletedAt = updatedAt = `at` (default: now); the record stays listed.
        Hard: gone from every list, like a deleted conversation (404 by id). Returns the records."""
        with self.lock:
            found = self._lookup(stream, ids)
            if hard:
                gone = {r["id"] for _, r in found}
                for records in {id(records): records for records, _ in found}.values():
                    records[:] = [r for r in records if r["id"] not in gone]  # in place: the server holds the list
                deleted = [r for _, r in found]
                for record in deleted:  # Kustomer's only trace of a hard delete
                    self._log_event(record["type"], record["id"], "delete", self._stamp(at))
            else:
                stamp = self._stamp(at)
                deleted = [self._change(r, deleted=True, deletedAt=stamp, updatedAt=stamp) for _, r in found]
            self.version += 1
            return deleted

    def index(self, stream: str, attr: str, desc: bool = False, include_deleted: bool = False) -> SortedIndex:
        """The search index of a stream key (a list name, "kobject.<klass>", "kobjects", or "conversation-times":
        every conversation's times), rebuilt only when the data changed since it was built."""
        with self.lock:
            lists = [self.all_conversation_times()] if stream == "conversation-times" else self._lists(stream)
            stamp = (self.version, sum(map(len, lists)))  # the length also notices records appended by hand
            key = (stream, attr, desc, include_deleted)
            cached = self._indexes.get(key)
            if not cached or cached[0] != stamp:
                live = [r for records in lists for r in records if include_deleted or not r["attributes"].get("deleted")]
                cached = self._indexes[key] = stamp, SortedIndex(live, attr, desc)
            return cached[1]

    def by_id(self, records: list[dict]) -> list[dict]:
        """A served list in id order (GET lists), re-sorted only when the data changed: 100,000 customers take
        ~35 ms to sort, once per page otherwise."""
        with self.lock:
            stamp = (self.version, len(records))
            cached = self._by_id.get(id(records))
            if not cached or cached[0] != stamp or cached[1] is not records:
                cached = self._by_id[id(records)] = stamp, records, sorted(records, key=lambda r: r["id"])
            return cached[2]

    def _lists(self, stream: str) -> list[list[dict]]:
        if stream == "kobjects":
            return list(self.kobjects.values())
        if stream.startswith("kobject.") and stream.removeprefix("kobject.") in self.kobjects:
            return [self.kobjects[stream.removeprefix("kobject.")]]
        if stream in self.resources:
            return [self.resources[stream]]
        raise ValueError(f"unknown stream {stream!r}")

    def _lookup(self, stream: str, ids) -> list[tuple[list[dict], dict]]:
        """(containing list, record) per id, in the order given; KeyError naming any id not found."""
        ids = list(dict.fromkeys([ids] if isinstance(ids, str) else ids))
        wanted = set(ids)
        found = {r["id"]: (records, r) for records in self._lists(stream) for r in records if r["id"] in wanted}
        if missing := [i for i in ids if i not in found]:
            raise KeyError(f"no {stream} with ids {missing}")
        return [found[i] for i in ids]

    @staticmethod
    def _change(record: dict, **changes) -> dict:
        # A new attributes dict rather than edits in place: a response being serialised in another thread never
        # sees a dict change size under it.
        attrs = record["attributes"]
        record["attributes"] = attrs | changes | ({"rev": attrs["rev"] + 1} if "rev" in attrs else {})
        return record

    def _stamp(self, at: str | datetime | None) -> str:
        """`at` (an ISO string or aware datetime; default: the clock's now) in Kustomer's millisecond format."""
        if at is None or isinstance(at, datetime):
            us = micros(at or self.clock())
        elif (us := parse_stamp(at)) is None:
            raise ValueError(f"not a timestamp: {at!r}")
        return iso(us // 1000)

    def _fresh_ids(self, count: int, stamp: str, head: bool = False) -> list[str]:
        """ObjectIds above every existing id: the creation second, or one past the newest id's second if that is
        later (the data runs up to UPDATED_TO, which may be after the clock). `head`: below every existing id."""
        seconds = [int(r["id"][:8], 16) for records in [*self.resources.values(), *self.kobjects.values()] for r in records]
        if head:
            self._heads = getattr(self, "_heads", 0) + 1
            return [f"{min(seconds, default=2) - self._heads:08x}{self._machine:010x}{n:06x}" for n in range(count)]
        second = max(parse_stamp(stamp) // 1_000_000, max(seconds, default=0) + 1)
        return [f"{second:08x}{self._machine:010x}{n:06x}" for n in range(count)]

