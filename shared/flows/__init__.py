"""The lifecycle flows, by CloudEvent type: one registry for the event functions and the webhook ingress.

`FLOWS[type]` imports the flow's module on first use, so a function loads only what it runs and a
flow whose module has not been written yet reads as absent (`FLOWS.get(type)` is None) instead of
breaking every other function at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from shared.models.types import (
    ACCESS_APPROVED,
    ACCESS_REVOKED,
    KEY_ROTATION_REQUESTED,
    USER_OFFBOARDED,
    USER_REHIRED,
    USER_REQUESTED,
)

# CloudEvent type → "module:function". Keep it a plain mapping: reviewers read it as the routing table.
REGISTRY: dict[str, str] = {
    USER_REQUESTED: "shared.flows.provision:request",
    ACCESS_APPROVED: "shared.flows.provision:approve",
    ACCESS_REVOKED: "shared.flows.revoke:revoke",
    USER_OFFBOARDED: "shared.flows.offboard:offboard",
    USER_REHIRED: "shared.flows.offboard:rehire_event",
    KEY_ROTATION_REQUESTED: "shared.flows.keys:rotation_requested",
}


def _load(target: str) -> Any | None:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None  # not written yet; any other missing module is a real error
        raise
    return getattr(module, attribute, None)


class LazyFlows(Mapping[str, Any]):
    """A read-only `type → flow` mapping that imports each flow when it is first looked up."""

    def __init__(self, registry: Mapping[str, str]):
        self._registry = dict(registry)
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, event_type: str) -> Any:
        if event_type not in self._loaded:
            target = self._registry.get(event_type)
            flow = _load(target) if target else None
            if flow is None:
                raise KeyError(event_type)
            self._loaded[event_type] = flow
        return self._loaded[event_type]

    def __iter__(self) -> Iterator[str]:
        return (event_type for event_type in self._registry if self.get(event_type) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def only(self, *event_types: str) -> LazyFlows:
        """The same registry restricted to some types (an event function handles its own type only)."""
        return LazyFlows({t: self._registry[t] for t in event_types})


FLOWS = LazyFlows(REGISTRY)
