"""Valid payloads and envelopes to start from; each test changes one thing."""

from __future__ import annotations

import copy
from typing import Any

from shared.sealing import generate_keypair

PRIVATE_KEY, PUBLIC_KEY = generate_keypair()

_USER_REQUESTED: dict[str, Any] = {
    "ticket_id": "ITSM-1042",
    "requester": "carol@example.com",
    "user": {
        "logon_name": "alice.kafka",
        "display_name": "Alice Chen",
        "email": "alice@example.com",
        "owner": "alice@example.com",
        "tags": {"team": "payments"},
    },
    "access_mode": "console",
    "grants": [
        {"policy": "AliyunKafkaReadOnlyAccess", "type": "System", "resource_group": "rg-aek2xl5qw"},
        {"template": "kafka-instance-operator", "params": {"instance_id": "alikafka_post-cn-7mz2"}},
    ],
    "duration": "P30D",
    "justification": "on-call for payments Kafka",
    "delivery_public_key": PUBLIC_KEY,
}


def user_requested_data(**changes: Any) -> dict[str, Any]:
    """The DESIGN.md example; `user={...}` merges into the user object, other keys replace."""
    data = copy.deepcopy(_USER_REQUESTED)
    user_changes = changes.pop("user", None)
    if user_changes is not None:
        data["user"].update(user_changes)
    data.update(changes)
    return data


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in keys}


def envelope(data: Any = None, *, type: str = "ramflow.user.requested", **changes: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "itsm.example.com",
        "type": type,
        "time": "2025-03-03T09:15:00Z",
        "datacontenttype": "application/json",
        "data": user_requested_data() if data is None else data,
    }
    event.update(changes)
    return event
