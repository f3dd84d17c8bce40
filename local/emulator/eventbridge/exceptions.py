"""EventBridge's error codes for PutEvents: one class per code."""

from __future__ import annotations

from local.emulator.errors import DeclaredError


class EventBusNotExist(DeclaredError):
    code_template = "EventBusNotExist"
    message_template = "The event bus [{name}] not existed!"
    http_status = 404

    def __init__(self, name: str) -> None:
        super().__init__(name=name)
