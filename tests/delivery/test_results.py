"""Result delivery: Standard Webhooks out and EventBridge PutEvents, recorded, retried, replayable."""

from __future__ import annotations

import json
import logging
import threading
import time

from local.receiver import WebhookReceiver, free_port
from shared.delivery import Outbox, deliver_due, publish_result
from shared.sealing import generate_keypair, open_sealed, seal
from tests.delivery.conftest import write_destinations

SOURCE = "itsm.example.com"


def sealed_reply(public: str, secret: str = "AKSecret-0123456789abcdef") -> dict:
    return {
        "status": "completed",
        "ticket_id": "ITSM-7",
        "user_name": "orders-etl",
        "actions": ["CreateUser orders-etl"],
        "credential": {
            "kind": "access_key",
            "access_key_id": "LTAI5tExample",
            "sealed_secret": seal(public, secret),
        },
    }


def test_a_result_reaches_the_receiver_signed_with_a_stable_id(make_runtime, result_secret, tmp_path) -> None:
    private, public = generate_keypair()
    with WebhookReceiver(result_secret) as receiver:
        runtime = make_runtime(write_destinations(tmp_path / "d.yaml", url=receiver.url))
        records = publish_result(
            runtime, source=SOURCE, request_key="itsm.example.com e-1", result=sealed_reply(public)
        )
        (arrival,) = receiver.wait_for(1)
        assert arrival.webhook_id == records[0].id == arrival.event["id"]
        assert arrival.event["type"] == "ramflow.result.completed"
        assert arrival.event["subject"] == "ITSM-7" and arrival.event["requestsource"] == SOURCE
        assert (
            open_sealed(private, arrival.event["data"]["credential"]["sealed_secret"])
            == "AKSecret-0123456789abcdef"
        )

        again = publish_result(
            runtime, source=SOURCE, request_key="itsm.example.com e-1", result=sealed_reply(public)
        )
        assert [r.id for r in again] == [records[0].id], "the same request makes the same message"
        time.sleep(0.3)
        assert len(receiver.arrivals) == 1, "a replayed request is not delivered twice"
        assert receiver.refused == 0
    ((record, _),) = Outbox(runtime.store.backend).all()
    assert record.status == "delivered" and record.attempts == 1
    stored = b"".join(f.read_bytes() for f in tmp_path.glob("state.db*"))
    assert b"LTAI5tExample" in stored and b"AKSecret-0123456789abcdef" not in stored, "ciphertext only"


def test_no_route_no_delivery_and_unfinished_results_are_not_sent(
    make_runtime, result_secret, tmp_path
) -> None:
    runtime = make_runtime(write_destinations(tmp_path / "d.yaml", url="http://127.0.0.1:9/x"))
    assert (
        publish_result(runtime, source="hr.example.com", request_key="k", result={"status": "completed"})
        == []
    )
    assert (
        publish_result(runtime, source=SOURCE, request_key="k", result={"status": "pending_approval"}) == []
    )
    assert Outbox(runtime.store.backend).all() == []


def test_a_receiver_down_at_first_gets_exactly_one_delivery_after_a_restart(
    make_runtime, result_secret, tmp_path
) -> None:
    port = free_port()
    destinations = write_destinations(tmp_path / "d.yaml", url=f"http://127.0.0.1:{port}/hooks/ramflow")
    _, public = generate_keypair()
    first = make_runtime(destinations)
    (record,) = publish_result(first, source=SOURCE, request_key="k-down", result=sealed_reply(public))
    ((stored, _),) = Outbox(first.store.backend).all()
    assert stored.status == "failing" and stored.attempts == 1 and stored.last_error == "ConnectionError"
    first.store.close()

    with WebhookReceiver(result_secret, port=port) as receiver:
        restarted = make_runtime(destinations)  # a new instance on the same store resumes the outbox
        time.sleep(0.15)
        for _ in range(5):
            deliver_due(restarted)
        arrivals = receiver.wait_for(1)
        time.sleep(0.2)
        assert len(receiver.arrivals) == 1, "exactly one delivery once the receiver is back"
        assert arrivals[0].webhook_id == record.id
    ((stored, _),) = Outbox(restarted.store.backend).all()
    assert stored.status == "delivered" and stored.attempts == 2


def test_a_failing_delivery_goes_dead_is_audited_and_replays_the_same_ciphertext(
    make_runtime, result_secret, tmp_path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="ramflow.audit")
    port = free_port()
    runtime = make_runtime(
        write_destinations(tmp_path / "d.yaml", url=f"http://127.0.0.1:{port}/h", schedule=[0.05])
    )
    _, public = generate_keypair()
    reply = sealed_reply(public)
    (record,) = publish_result(runtime, source=SOURCE, request_key="k-dead", result=reply)
    time.sleep(0.1)
    report = deliver_due(runtime)
    assert report.dead == [record.id]
    ((stored, _),) = Outbox(runtime.store.backend).all()
    assert stored.status == "dead" and stored.attempts == 2
    actions = [json.loads(r.getMessage())["action"] for r in caplog.records if r.name == "ramflow.audit"]
    assert actions == ["delivery.queued", "delivery.retrying", "delivery.failed"]
    assert deliver_due(runtime).delivered == [], "a dead delivery waits for a replay"

    with WebhookReceiver(result_secret, port=port) as receiver:
        assert [r.id for r in Outbox(runtime.store.backend).replay(record.id)] == [record.id]
        assert deliver_due(runtime).delivered == [record.id]
        (arrival,) = receiver.wait_for(1)
    assert arrival.event["data"]["credential"] == reply["credential"], (
        "the stored ciphertext, never a new secret"
    )


def test_two_dispatchers_never_send_one_record_twice(make_runtime, result_secret, tmp_path) -> None:
    port = free_port()
    destinations = write_destinations(tmp_path / "d.yaml", url=f"http://127.0.0.1:{port}/h")
    runtime = make_runtime(destinations)
    for n in range(8):
        publish_result(
            runtime, source=SOURCE, request_key=f"k-{n}", result={"status": "rejected", "ticket_id": f"T-{n}"}
        )
    time.sleep(0.15)
    with WebhookReceiver(result_secret, port=port) as receiver:
        workers = [make_runtime(destinations) for _ in range(3)]
        threads = [threading.Thread(target=deliver_due, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        receiver.wait_for(8)
        time.sleep(0.2)
        ids = [a.webhook_id for a in receiver.arrivals]
    assert len(ids) == 8 == len(set(ids))


def test_eventbridge_put_events_reaches_the_bus(make_runtime, emulator_server, tmp_path) -> None:
    emulator_server.emulator.account.eventbridge.create_bus("ramflow-results")
    runtime = make_runtime(
        write_destinations(tmp_path / "d.yaml", bus="ramflow-results"), emulator_server.endpoint
    )
    _, public = generate_keypair()
    reply = sealed_reply(public)
    (record,) = publish_result(runtime, source=SOURCE, request_key="k-eb", result=reply)
    (put,) = emulator_server.emulator.account.eventbridge.events("ramflow-results")
    assert put["Id"] == record.id and put["Type"] == "ramflow.result.completed" and put["Subject"] == "ITSM-7"
    assert put["Data"]["credential"] == reply["credential"]
    ((stored, _),) = Outbox(runtime.store.backend).all()
    assert stored.status == "delivered"


def test_eventbridge_to_a_missing_bus_keeps_retrying(make_runtime, emulator_server, tmp_path) -> None:
    runtime = make_runtime(
        write_destinations(tmp_path / "d.yaml", bus="no-such-bus"), emulator_server.endpoint
    )
    publish_result(
        runtime, source=SOURCE, request_key="k-eb2", result={"status": "completed", "ticket_id": "T"}
    )
    ((stored, _),) = Outbox(runtime.store.backend).all()
    assert stored.status == "failing" and stored.last_error == "EventBusNotExist"
