"""The requester's whole path through `ramflow serve`: an async invocation, the result by callback,
`ramflow unseal`, and the key working in an unmodified `alibabacloud-credentials` client."""

from __future__ import annotations

import json
import os
import time
import uuid

import fc2

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.receiver import WebhookReceiver, free_port
from local.shell import caller_identity_with_profile, ramflow
from local.testing import serve_process
from shared.sealing import generate_keypair
from shared.webhooks import new_secret
from tests.flows.conftest import sample

SECRET_ENV = "RAMFLOW_E2E_RESULT_SECRET"


def auto_approved_request(public: str) -> dict:
    """A programmatic request whose only grant the catalog auto-approves: user-requested completes it."""
    event = sample("user-requested-programmatic.json", delivery_public_key=public)
    event["data"]["ticket_id"] = f"ITSM-{uuid.uuid4().hex[:6]}"
    event["data"]["grants"] = event["data"]["grants"][:1]
    event["data"]["duration"] = "P7D"
    return event


def test_async_invocation_result_arrives_by_callback_and_opens_into_a_working_profile(tmp_path) -> None:
    secret = new_secret()
    key = tmp_path / "requester.key"
    public = ramflow("keygen", "--out", str(key)).stdout.strip()
    with WebhookReceiver(secret) as receiver:
        destinations = tmp_path / "destinations.yaml"
        destinations.write_text(
            json.dumps(
                {
                    "routes": [
                        {
                            "name": "itsm",
                            "source": "itsm.example.com",
                            "webhook": {"url": receiver.url, "secret_env": SECRET_ENV},
                        }
                    ]
                }
            )
        )
        env = {**os.environ, SECRET_ENV: secret, "RAMFLOW_DESTINATIONS": str(destinations)}
        with serve_process("--store", f"sqlite:///{tmp_path}/state.db", env=env) as served:
            cloud = served.startup.split("embedded emulator ", 1)[1].split(")", 1)[0]
            event = auto_approved_request(public)
            client = fc2.Client(
                endpoint=served.endpoint,
                accessKeyID=DEFAULT_ROOT_KEY_ID,
                accessKeySecret=DEFAULT_ROOT_KEY_SECRET,
            )
            accepted = client.invoke_function(
                "ramflow",
                "user-requested",
                payload=json.dumps(event).encode(),
                headers={"x-fc-invocation-type": "Async"},
            )
            assert accepted.headers["X-Fc-Request-Id"] and not accepted.data, "async: 202, no reply body"

            (arrival,) = receiver.wait_for(1, timeout=60)
            assert receiver.refused == 0, "every delivery verifies with standardwebhooks"
            assert arrival.event["type"] == "ramflow.result.completed"
            assert arrival.event["data"]["ticket_id"] == event["data"]["ticket_id"]
            assert arrival.event["requestid"] == event["id"]

            home = tmp_path / "home"
            home.mkdir()
            opened = ramflow(
                "unseal",
                "--key",
                str(key),
                "--profile",
                "ramflow",
                stdin=arrival.body.decode(),
                env={"HOME": str(home)},
            )
            assert opened.returncode == 0, opened.stderr
            identity = caller_identity_with_profile(home, "ramflow", cloud)
            assert identity.returncode == 0, identity.stderr
            assert identity.stdout.strip().endswith(":user/orders-etl")

            profile = json.loads((home / ".aliyun" / "config.json").read_text())["profiles"][0]
            secret_value = profile["access_key_secret"]
    assert len(receiver.arrivals) == 1
    logs = served.startup + served.rest + opened.stdout + opened.stderr + identity.stdout + identity.stderr
    assert secret_value not in logs, "the AccessKey secret is in no output of serve or the tools"
    assert secret_value not in arrival.body.decode()
    private = "".join(line for line in key.read_text().splitlines() if not line.startswith("#"))
    assert private not in logs
    stored = b"".join(f.read_bytes() for f in tmp_path.glob("state.db*"))
    assert event["data"]["ticket_id"].encode() in stored, "the store is where the test looks"
    assert secret_value.encode() not in stored and private.encode() not in stored


def test_a_receiver_down_at_first_gets_exactly_one_delivery_once_it_is_back(tmp_path) -> None:
    secret = new_secret()
    port = free_port()
    destinations = tmp_path / "destinations.yaml"
    destinations.write_text(
        json.dumps(
            {
                "routes": [
                    {
                        "name": "itsm",
                        "source": "itsm.example.com",
                        "webhook": {
                            "url": f"http://127.0.0.1:{port}/hooks/ramflow",
                            "secret_env": SECRET_ENV,
                        },
                    }
                ],
                "retry_schedule": [2] * 20,
            }
        )
    )
    env = {**os.environ, SECRET_ENV: secret, "RAMFLOW_DESTINATIONS": str(destinations)}
    _, public = generate_keypair()
    event = auto_approved_request(public)
    with serve_process("--store", f"sqlite:///{tmp_path}/state.db", env=env) as served:
        client = fc2.Client(
            endpoint=served.endpoint, accessKeyID=DEFAULT_ROOT_KEY_ID, accessKeySecret=DEFAULT_ROOT_KEY_SECRET
        )
        client.invoke_function(
            "ramflow",
            "user-requested",
            payload=json.dumps(event).encode(),
            headers={"x-fc-invocation-type": "Async"},
        )
        listed: list = []
        deadline = time.time() + 60
        while time.time() < deadline and not any(r["status"] == "failing" for r in listed):
            time.sleep(0.3)
            shown = ramflow("deliveries", "--json", "--store", f"sqlite:///{tmp_path}/state.db")
            listed = json.loads(shown.stdout) if shown.returncode == 0 and shown.stdout.strip() else []
        assert [r["status"] for r in listed] == ["failing"], "the first attempt failed: nobody listens"
        assert listed[0]["last_error"] == "ConnectionError"
        with WebhookReceiver(secret, port=port) as receiver:
            (arrival,) = receiver.wait_for(1, timeout=60)
            time.sleep(1.5)  # three more delivery passes: a second delivery would have come by now
            assert len(receiver.arrivals) == 1
    assert arrival.event["data"]["ticket_id"] == event["data"]["ticket_id"]
