"""EventBridge (2020-04-01) state: an account's event buses and the events put on them.

Each account has the `default` bus, as in the cloud. Events are kept in order per bus so tests and
the demo can read what was published (in the spirit of moto's in-memory backends).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from local.emulator.eventbridge.exceptions import EventBusNotExist

MAX_EVENTS_PER_CALL = 16  # a bound of this emulator (by analogy with other buses), not a documented limit


@dataclass
class PutEvent:
    event_id: str
    trace_id: str
    bus: str
    entry: dict[str, Any]


@dataclass
class EventBus:
    name: str
    events: list[PutEvent] = field(default_factory=list)


class EventBridgeBackend:
    def __init__(self, account_id: str):
        self.account_id = account_id
        self.buses: dict[str, EventBus] = {"default": EventBus("default")}

    def create_bus(self, name: str) -> EventBus:
        return self.buses.setdefault(name, EventBus(name))

    def bus(self, name: str) -> EventBus:
        found = self.buses.get(name)
        if found is None:
            raise EventBusNotExist(name)
        return found

    def put(self, bus: EventBus, entry: dict[str, Any]) -> PutEvent:
        event = PutEvent(str(entry["Id"]), uuid.uuid4().hex, bus.name, entry)
        bus.events.append(event)
        return event

    def events(self, bus: str = "default") -> list[dict[str, Any]]:
        """What was put on `bus`, oldest first (the entries as sent)."""
        return [e.entry for e in self.buses[bus].events] if bus in self.buses else []
