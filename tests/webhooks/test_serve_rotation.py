"""`ramflow serve` as its own process: a rotation requested through signed webhooks, with the
embedded emulator's clock moved from outside through its control surface — the functions follow it."""

from __future__ import annotations

import json
import os
import re

import requests

from local.testing import serve_process
from shared.sealing import generate_keypair, open_sealed
from shared.webhooks import DEV_SECRET
from tests.webhooks.conftest import encode, sample, sign


def post(url: str, event: dict, webhook_id: str) -> requests.Response:
    body = encode(event)
    headers = {**sign(DEV_SECRET, webhook_id, body), "Content-Type": "application/cloudevents+json"}
    return requests.post(url, data=body, headers=headers, timeout=60)


def test_a_rotation_over_webhooks_follows_the_emulator_clock_moved_over_http() -> None:
    private, public = generate_keypair()
    env = {k: v for k, v in os.environ.items() if k != "RAMFLOW_WEBHOOK_SECRET"}
    env.update(RAMFLOW_KEY_ROTATION_OVERLAP="P2D", RAMFLOW_KEY_ROTATION_DELETE_AFTER="P1D")
    with serve_process(env=env) as served:
        control = re.search(r"emulator control\s+(http://\S+/emulator-api/)", served.startup)
        assert control, served.startup
        url = f"{served.endpoint}/webhook-ingress/"
        request = sample(
            "user-requested-programmatic.json",
            delivery_public_key=public,
            grants=[{"policy": "AliyunKafkaReadOnlyAccess", "type": "System"}],
        )
        created = post(url, request, "msg_req")
        assert created.status_code == 200, created.text
        old_id = created.json()["credential"]["access_key_id"]

        rotation = sample("key-rotation-requested.json")
        first = post(url, rotation, "msg_rot_1").json()
        assert first["plan"]["rotation"]["state"] == "delivered", first
        assert first["plan"]["rotation"]["old_key_id"] == old_id
        assert open_sealed(private, first["credential"]["sealed_secret"])

        moved = requests.post(control.group(1) + "clock/advance", json={"duration": "P2DT1H"}, timeout=10)
        assert moved.json()["offset_seconds"] == 2 * 86400 + 3600
        again = post(url, {**rotation, "id": "another-request"}, "msg_rot_2").json()
        assert again["plan"]["rotation"]["state"] == "deactivated", again  # the function saw the moved clock

        recorded = requests.get(
            control.group(1) + "recorder", params={"action": "UpdateAccessKey"}, timeout=10
        )
        assert [c["params"]["UserAccessKeyId"] for c in recorded.json()["calls"]] == [old_id]
        assert json.dumps(recorded.json()).count(first["credential"]["sealed_secret"]) == 0
