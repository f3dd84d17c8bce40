"""Demo part: two tickets, requested and approved — one console user, one programmatic user."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from rich.table import Table

from local.demo import Demo
from local.invoke import invoke
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.sealing import generate_keypair, open_sealed

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _event(name: str, **data: Any) -> bytes:
    event = json.loads((EVENTS / name).read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(data)
    return json.dumps(event).encode()


def _brief(reply: dict[str, Any]) -> str:
    shown = {k: v for k, v in reply.items() if k in {"status", "ticket_id", "user_name", "errors"}}
    if "plan" in reply:
        shown["plan"] = [
            f"{g['policy_name']} @ {g.get('resource_group') or 'account'}" for g in reply["plan"]["grants"]
        ]
    if "credential" in reply:
        credential = dict(reply["credential"])
        for key in ("sealed_secret", "sealed_password"):
            if key in credential:
                credential[key] = credential[key][:24] + "…"
        shown["credential"] = credential
    return json.dumps(shown, indent=2, ensure_ascii=False)


def run(demo: Demo) -> None:
    demo.section("Provisioning: user.requested → access.approved")
    private, public = generate_keypair()
    demo.facts["delivery_keys"] = (private, public)
    demo.say(
        "The requester generated an X25519 key pair; ramflow seals one-time secrets to its public key. "
        "The sample events in events/ run as written: the local seed created the resource groups they "
        "name (rg-aek2xl5qw payments Kafka, rg-acfm3orders orders)."
    )

    console = _event("user-requested-console.json", delivery_public_key=public)
    reply = invoke("user-requested", console)
    demo.show("user-requested (console, ITSM-1042)", _brief(reply))
    reply = invoke("access-approved", _event("access-approved.json"))
    demo.show("access-approved by dave@example.com", _brief(reply))
    password = open_sealed(private, reply["credential"]["sealed_password"])
    demo.say(
        f"The requester opens the sealed password with their private key: {len(password)} characters "
        f"(not printed); the console forces a reset and MFA binding at first login."
    )

    programmatic = _event("user-requested-programmatic.json", delivery_public_key=public)
    reply = invoke("user-requested", programmatic)
    demo.show("user-requested (programmatic, ITSM-1043)", _brief(reply))
    reply = invoke("access-approved", _event("access-approved-programmatic.json"))
    demo.show("access-approved", _brief(reply))
    key_id = reply["credential"]["access_key_id"]
    secret = open_sealed(private, reply["credential"]["sealed_secret"])
    identity = CloudClients(demo.settings, CloudCredentials(key_id, secret)).sts.get_caller_identity().body
    demo.say(f"The opened AccessKey works: GetCallerIdentity → {identity.arn}")
    replay = invoke("access-approved", _event("access-approved-programmatic.json"))
    demo.say(
        f"A second approval of ITSM-1043 changes nothing: status {replay['status']}, "
        f"same key {replay.get('credential', {}).get('access_key_id', '-')}, no second secret."
    )
    demo.facts["provisioned"] = ["alice.kafka", "orders-etl"]
    _show_state(demo, ["alice.kafka", "orders-etl"])


def _show_state(demo: Demo, users: list[str]) -> None:
    ram = demo.emulator.account.ram
    table = Table("user", "tags", "policies @ scope", "access", title="RAM state now")
    for name in users:
        user = ram.users[name]
        policies = "\n".join(
            sorted(
                f"{name} @ {scope if scope.startswith('rg-') else 'account'}"
                for _type, name, scope in user.policies
            )
        )
        access = (
            "login profile (reset+MFA required)"
            if user.login_profile is not None
            else f"{len(user.access_keys)} AccessKey"
        )
        table.add_row(name, ", ".join(f"{k}={v}" for k, v in sorted(user.tags.items())), policies, access)
    demo.console.print(table)
