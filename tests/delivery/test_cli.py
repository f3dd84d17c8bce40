"""`ramflow deliveries`: the operator sees what keeps failing and replays it."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner

from local.cli import app
from local.receiver import WebhookReceiver, free_port
from shared.delivery import deliver_due, publish_result
from tests.delivery.conftest import write_destinations


def test_failing_deliveries_are_listed_and_a_replay_delivers_once(
    make_runtime, result_secret, tmp_path
) -> None:
    port = free_port()
    runtime = make_runtime(
        write_destinations(tmp_path / "d.yaml", url=f"http://127.0.0.1:{port}/h", schedule=[0.05])
    )
    (dead,) = publish_result(
        runtime,
        source="itsm.example.com",
        request_key="k1",
        result={"status": "rejected", "ticket_id": "T-1"},
    )
    time.sleep(0.1)
    deliver_due(runtime)
    store = f"sqlite:///{tmp_path}/state.db"

    listed = CliRunner().invoke(app, ["deliveries", "--failing", "--json", "--store", store])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["id"], row["status"], row["attempts"], row["type"]) == (
        dead.id,
        "dead",
        2,
        "ramflow.result.rejected",
    )
    assert "event" not in row

    with WebhookReceiver(result_secret, port=port) as receiver:
        replayed = CliRunner().invoke(app, ["deliveries", "--replay", dead.id, "--store", store])
        assert replayed.exit_code == 0 and dead.id in replayed.output
        deliver_due(runtime)
        assert [a.webhook_id for a in receiver.wait_for(1)] == [dead.id]
    after = json.loads(CliRunner().invoke(app, ["deliveries", "--json", "--store", store]).output)
    assert [r["status"] for r in after] == ["delivered"]
    unknown = CliRunner().invoke(app, ["deliveries", "--replay", "msg_nope", "--store", store])
    assert unknown.exit_code == 1
