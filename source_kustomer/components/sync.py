"""What the components of one sync share: the org's rate budget, whether Kustomer refuses the API key, and the
warnings already given. The CDK builds a component (an authenticator, an error handler) per stream and requester, so
this is the one process-wide registry, keyed by the `sync_id` NormalizeConfigTransformation gives each sync: every
component of a sync finds the same object, and a new sync (a new source, as each test builds) starts afresh."""

import logging
import threading
from collections import OrderedDict
from typing import Any, Callable, Mapping, Optional

from source_kustomer.components.budget import OrgBudget

LOGGER = logging.getLogger("airbyte")


class Sync:
    _registry: "OrderedDict[tuple, Sync]" = OrderedDict()
    _registry_lock = threading.Lock()
    KEPT = 16  # syncs remembered per process: one in production; tests build many sources one after another

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "Sync":
        key = (str(config.get("sync_id", "")), str(config.get("api_url", "")), str(config.get("max_api_usage_percent")))
        with cls._registry_lock:
            if key not in cls._registry:
                # NormalizeConfigTransformation sets the share (the spec's default where none is given).
                cls._registry[key] = cls(float(config.get("max_api_usage_percent") or 100))
                while len(cls._registry) > cls.KEPT:
                    cls._registry.popitem(last=False)
            return cls._registry[key]

    def __init__(self, usage_percent: float) -> None:
        self.budget = OrgBudget(usage_percent)
        self._lock, self._key_lock = threading.Lock(), threading.Lock()
        self._warned: set = set()
        self._key_refused: dict[str, Optional[bool]] = {}

    def warn_once(self, key: Any, message: str) -> bool:
        """Logs `message` as a warning the first time `key` is given in this sync; True if it was."""
        with self._lock:
            first = key not in self._warned
            self._warned.add(key)
        if first:
            LOGGER.warning(message)
        return first

    def key_refused(self, ask: Callable[[], Optional[bool]]) -> Optional[bool]:
        """Whether Kustomer refuses the API key itself, asked once per sync (`ask`); other threads meeting a 401 wait
        for the one answer."""
        with self._key_lock:
            if "answer" not in self._key_refused:
                self._key_refused["answer"] = ask()
            return self._key_refused["answer"]
