"""The state store goes down mid-flow and comes back: no event is lost, no unrecorded key remains.

The test runs its own redis-server (tests/store/own_redis.py) and kills it right after
CreateAccessKey took effect at the cloud, before ramflow could record the key.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_resourcemanager20200331 import models as rm_models

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.invoke import invoke
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.cloud.ram import RamGateway
from shared.config import Settings
from shared.fc import FcContext, FcFunction
from shared.handler import FlowFailed
from shared.runtime import runtime_for
from shared.sealing import open_sealed
from shared.store import StateStore
from tests.flows.test_provision import approval, keys_of, programmatic_request
from tests.store.own_redis import OwnRedis, own_redis

LEASE_SECONDS = 60  # the function's timeout: a lease (and a user lock) ends at the invocation's deadline


def context() -> FcContext:
    return FcContext(FcFunction("access-approved", timeout=LEASE_SECONDS))


def deliver(function: str, event: dict[str, Any]) -> Any:
    return invoke(function, json.dumps(event).encode(), context())


@pytest.fixture
def redis_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator_server) -> Any:
    with own_redis(tmp_path) as server:
        monkeypatch.setenv("RAMFLOW_CLOUD_ENDPOINT", emulator_server.endpoint)
        monkeypatch.setenv("RAMFLOW_STORE", f"{server.url}?namespace=outage:&socket_timeout=1")
        monkeypatch.setenv("RAMFLOW_AUDIT_PATH", str(tmp_path / "audit.jsonl"))
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
        yield server


def test_a_store_outage_after_create_access_key_loses_nothing(
    redis_store: OwnRedis,
    emulator: Emulator,
    root_clients: CloudClients,
    delivery_keys: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    private, public = delivery_keys
    rg = root_clients.resource_manager.create_resource_group(
        rm_models.CreateResourceGroupRequest(name="orders", display_name="Orders")
    ).body.resource_group.id
    assert deliver("user-requested", programmatic_request(public, rg))["status"] == "pending_approval"

    create = RamGateway.create_access_key
    crashed: list[str] = []

    def create_then_lose_the_store(self: RamGateway, name: str) -> Any:
        key = create(self, name)
        if not crashed:
            crashed.append(key.access_key_id)
            redis_store.stop()
        return key

    monkeypatch.setattr(RamGateway, "create_access_key", create_then_lose_the_store)
    event = approval("ITSM-1043")
    first_deadline = time.time() + LEASE_SECONDS

    # 1. the attempt cannot record the key, nor release its lease or the user's lock
    with pytest.raises(Exception):  # noqa: B017 - whatever the store's failure, it is not a reply
        deliver("access-approved", event)
    assert crashed and crashed == keys_of(root_clients, "orders-etl")

    # 2. FC's retries while the store is down: each fails, none is counted as delivered
    with pytest.raises(Exception):  # noqa: B017
        deliver("access-approved", event)

    # 3. the store is back, the dead attempt's lease still runs: the retry is refused, not answered
    redis_store.start()
    with pytest.raises(FlowFailed) as busy:
        deliver("access-approved", event)
    assert busy.value.result.status == "in_progress"

    # 4. past the dead attempt's deadline its lease is taken over and the replay converges
    # (the store's clock is moved past that deadline rather than waiting a function timeout)
    idempotency = runtime_for(Settings.from_env(), CloudCredentials.resolve(None)).store.idempotency
    assert time.time() < first_deadline
    idempotency._clock = lambda: time.time() + LEASE_SECONDS + 1
    reply = deliver("access-approved", event)
    assert reply["status"] == "completed", reply
    assert "deleted unrecorded AccessKey " + crashed[0] in reply["actions"]
    key_id = reply["credential"]["access_key_id"]
    assert keys_of(root_clients, "orders-etl") == [key_id], "the unrecorded key must be gone"
    secret = open_sealed(private, reply["credential"]["sealed_secret"])
    own = CloudClients(root_clients.settings, CloudCredentials(key_id, secret))
    assert own.sts.get_caller_identity().body.arn.endswith(":user/orders-etl")

    # nothing is left held: a later event for the user runs at once, the duplicate gets the reply
    store = StateStore.from_url(f"{redis_store.url}?namespace=outage:")
    try:
        assert store.idempotency.get("lock:user:orders-etl") is None
        assert store.idempotency.get("lock:owner:frank@example.com") is None
    finally:
        store.close()
    assert deliver("access-approved", event) == reply
