"""A mixed workload: many people's events, shuffled, duplicated, delivered by several processes at
once to the real flows over one Redis store and one emulator that fails a share of the calls.

Each process is a delivery channel as FC's asynchronous invocation is: an attempt that is not final
(raised) is retried a few times, then parked in the failed-events queue, which an operator replays
at the end. The process returns every reply it got; the test then checks the invariants.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

from local.testing import ROOT_CREDENTIALS
from shared.config import Settings
from shared.flows import FLOWS
from shared.flows.reconcile import reconcile
from shared.handler import FlowFailed, process_event
from shared.models.events import CloudEvent
from shared.runtime import Runtime
from shared.store import StateStore
from shared.store.url import open_store

RETRIES = 3  # FC's asynchronous invocation retries before the failed-events queue


@dataclass
class Tally:
    deliveries: int = 0
    retried: int = 0
    parked: int = 0


def runtime(endpoint: str, store_url: str, max_attempts: int) -> Runtime:
    settings = Settings(
        cloud_endpoint=endpoint,
        store=store_url,
        max_concurrency=4,
        rate_limit_qps=1000.0,
        max_attempts=max_attempts,
    )
    return Runtime(settings, ROOT_CREDENTIALS, StateStore(open_store(store_url)))


def deliver_all(
    endpoint: str, store_url: str, events: list[dict[str, Any]], seed: int, max_attempts: int = 2
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """Deliver `events` (CloudEvent JSON, or {"type": "reconcile"}) in order, retrying; returns
    (replies, parked events, counts)."""
    rng = random.Random(seed)
    rt = runtime(endpoint, store_url, max_attempts)
    rt.catalog  # noqa: B018 - parsed once per process, as a warm instance does
    tally = Tally()
    replies: list[dict[str, Any]] = []
    parked: list[dict[str, Any]] = []
    queue = [(event, 0) for event in events]
    while queue:
        event, attempt = queue.pop(0)
        tally.deliveries += 1
        final = _attempt(rt, event, replies)
        if final:
            continue
        if attempt + 1 > RETRIES:
            tally.parked += 1
            parked.append(event)
            continue
        tally.retried += 1
        # FC retries later: meanwhile other events go on (a reordering of its own)
        queue.insert(min(len(queue), rng.randint(1, 6)), (event, attempt + 1))
        time.sleep(0.01)
    rt.store.close()
    return (
        replies,
        parked,
        {
            "deliveries": tally.deliveries,
            "retried": tally.retried,
            "parked": tally.parked,
            "pid": os.getpid(),
        },
    )


def _attempt(rt: Runtime, event: dict[str, Any], replies: list[dict[str, Any]]) -> bool:
    if event["type"] == "reconcile":
        report = reconcile(rt, remediate=False)
        return not report.journal.errors
    try:
        result = process_event(
            CloudEvent.model_validate(event),
            FLOWS,
            rt,
            owner=uuid.uuid4().hex,
            lease_until=time.time() + 60,
        )
    except FlowFailed:
        return False
    replies.append(result.to_json())
    return True
