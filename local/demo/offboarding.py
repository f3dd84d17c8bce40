"""Demo part: a ticket revoked, a leaver offboarded (with a key someone added by hand), and a
time-bound grant expiring in reconcile — time moved on through the ledger's clock, not by sleeping."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from alibabacloud_ims20190815 import models as ims_models
from alibabacloud_ram20150501 import models as ram_models
from rich.table import Table

from local.demo import Demo
from local.invoke import invoke
from shared.flows.offboard import run_offboarding
from shared.flows.reconcile import reconcile
from shared.models.events import UserOffboarded
from shared.runtime import Runtime
from shared.sealing import generate_keypair
from shared.store import StateStore

EVENTS = Path(__file__).resolve().parents[2] / "events"
LEAVER = "alice@example.com"
READ_ONLY = ("Get", "List")


def _event(name: str, **data: Any) -> bytes:
    event = json.loads((EVENTS / name).read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(data)
    return json.dumps(event).encode()


def run(demo: Demo) -> None:
    audit_log = logging.getLogger("ramflow.audit")
    propagate, audit_log.propagate = audit_log.propagate, False  # the demo shows the audit file instead
    try:
        _ensure_provisioned(demo)
        _revoke(demo)
        _offboard(demo)
        _expire(demo)
    finally:
        audit_log.propagate = propagate


def _ensure_provisioned(demo: Demo) -> None:
    """The provisioning part leaves alice.kafka (ITSM-1042) and orders-etl (ITSM-1043); run alone,
    this part makes its own."""
    if "provisioned" in demo.facts:
        return
    public = generate_keypair()[1]
    for name in ("user-requested-console.json", "user-requested-programmatic.json"):
        grants = [{"policy": "AliyunKafkaReadOnlyAccess", "type": "System"}]
        invoke("user-requested", _event(name, delivery_public_key=public, grants=grants))
    demo.facts["provisioned"] = ["alice.kafka", "orders-etl"]


def _revoke(demo: Demo) -> None:
    demo.section("Revocation: access.revoked removes one ticket's grants")
    _show(demo, ["alice.kafka"], "before ITSM-1042 is revoked")
    event = _event("access-revoked.json")
    reply = invoke("access-revoked", event)
    demo.show(
        "access-revoked ITSM-1042 (moved team)",
        json.dumps(
            {
                "status": reply["status"],
                "actions": [f"{a['subject']}: {a['action']} {a['target']}".strip() for a in reply["actions"]],
            },
            indent=2,
        ),
    )
    demo.say(
        "No other ticket grants alice.kafka anything, so its access is disabled too (login profile "
        "deleted); the custom policy rendered for the ticket is deleted once nothing else uses it."
    )
    seq = demo.emulator.recorder.last_seq
    again = invoke("access-revoked", event)
    demo.say(
        f"The same event delivered again: status {again['status']}, "
        f"{len(demo.emulator.recorder.since(seq))} cloud calls (answered from the idempotency record)."
    )


def _offboard(demo: Demo) -> None:
    demo.section("Offboarding: user.offboarded takes every RAM user the leaver owns apart")
    public = generate_keypair()[1]
    request = _event(
        "user-requested-programmatic.json",
        ticket_id="ITSM-1050",
        user={"logon_name": "alice.batch", "owner": LEAVER, "email": LEAVER, "tags": {"team": "payments"}},
        grants=[{"policy": "AliyunKafkaReadOnlyAccess", "type": "System"}],
        delivery_public_key=public,
    )
    invoke("user-requested", request)
    ram = demo.root_clients.ram
    extra = ram.create_access_key(ram_models.CreateAccessKeyRequest(user_name="alice.batch")).body.access_key
    ram.create_group(ram_models.CreateGroupRequest(group_name="payments-admins"))
    ram.add_user_to_group(
        ram_models.AddUserToGroupRequest(user_name="alice.batch", group_name="payments-admins")
    )
    ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            user_name="alice.batch", policy_name="ReadOnlyAccess", policy_type="System"
        )
    )
    ram.create_user(ram_models.CreateUserRequest(user_name="alice.sandbox"))
    demo.root_clients.ims.tag_resources(
        ims_models.TagResourcesRequest(
            resource_type="user",
            resource_principal_name=[f"alice.sandbox@{demo.emulator.account.alias}.onaliyun.com"],
            tag=[ims_models.TagResourcesRequestTag(key="owner", value=LEAVER)],
        )
    )
    demo.say(
        f"alice.batch (ITSM-1050) got, by hand: a second AccessKey {extra.access_key_id}, the group "
        "payments-admins and ReadOnlyAccess. alice.sandbox was made by hand, tagged owner=alice, "
        "never managed by ramflow."
    )
    _show(demo, ["alice.kafka", "alice.batch", "alice.sandbox"], "before the HR event")

    rt = _runtime(demo)
    seq = demo.emulator.recorder.last_seq
    plan = run_offboarding(
        rt, UserOffboarded(owner=LEAVER, hr_event_id="WD-778"), actor="demo", dry_run=True
    ).journal.planned
    calls = demo.emulator.recorder.since(seq)
    demo.say(
        f"`ramflow offboard --owner {LEAVER} --dry-run` plans {len(plan)} calls; it made {len(calls)} "
        f"calls itself, all of them reads: {all(c.action.startswith(READ_ONLY) for c in calls)}."
    )

    seq = demo.emulator.recorder.last_seq
    reply = invoke("user-offboarded", _event("user-offboarded.json"))
    calls = demo.emulator.recorder.since(seq)
    demo.show(
        "user-offboarded WD-778 (owner alice@example.com, grace P0D)",
        json.dumps(
            {"status": reply["status"], "needs_human": reply["needs_human"], "cloud calls": len(calls)},
            indent=2,
        ),
    )
    table = Table(
        "user", "calls made (one level after another, each level side by side)", title="What was done"
    )
    for user in ("alice.kafka", "alice.batch"):
        done = [f"{a['action']} {a['target']}".strip() for a in reply["actions"] if a["subject"] == user]
        table.add_row(user, "\n".join(done))
    demo.console.print(table)
    _show(demo, ["alice.kafka", "alice.batch", "alice.sandbox"], "after")
    audited = [json.loads(line) for line in (demo.workdir / "audit.jsonl").read_text().splitlines()]
    mine = [
        f"{a['action']} {a['details'].get('user')}: {a['outcome']}"
        for a in audited
        if a["action"].startswith("user.")
    ]
    demo.say("Audit trail: " + "; ".join(mine[-3:]))


def _expire(demo: Demo) -> None:
    demo.section("Reconcile: a time-bound grant runs out")
    ram = demo.root_clients.ram
    ram.create_group(ram_models.CreateGroupRequest(group_name="orders-oncall"))
    ram.add_user_to_group(
        ram_models.AddUserToGroupRequest(user_name="orders-etl", group_name="orders-oncall")
    )
    ticket = StateStore.from_url(demo.settings.store).ledger.get_ticket("ITSM-1043")
    expires = min((g.expires_at for g in ticket.grants if g.expires_at), default=None) if ticket else None
    demo.say(
        f"ITSM-1043 (orders-etl) was granted for P14D, until {expires:%Y-%m-%d %H:%M} UTC. Someone also "
        "added orders-etl to the group orders-oncall by hand."
        if expires
        else "ITSM-1043's grants are time-bound."
    )
    rt = _runtime(demo)
    later = datetime.now(timezone.utc) + timedelta(days=15)
    rt = replace(rt, clock=lambda: later)
    report = reconcile(rt, actor="demo")
    table = Table(
        "what", "found", "done", title=f"reconcile pass as of {later:%Y-%m-%d} (ledger clock +15 days)"
    )
    table.add_row(
        "grants past their duration",
        "\n".join(g.grant_id for g in report.expired),
        "\n".join(f"{a['subject']}: {a['action']} {a['target']}".strip() for a in report.journal.actions),
    )
    table.add_row(
        "drift (report only; RAMFLOW_RECONCILE_REMEDIATE=true fixes it)",
        "\n".join(f"{d.user_name}: {d.kind} {d.target}" for d in report.drift),
        "listed as needing a human",
    )
    demo.console.print(table)
    _show(demo, ["orders-etl"], "after reconcile")


def _runtime(demo: Demo) -> Runtime:
    """The flows called directly (dry run, a reconcile pass at a later time) share the demo's store."""
    return Runtime(demo.settings, demo.root_credentials, StateStore.from_url(demo.settings.store))


def _show(demo: Demo, users: list[str], when: str) -> None:
    ram = demo.emulator.account.ram
    table = Table("user", "managed", "access", "policies @ scope", "groups", title=f"RAM state {when}")
    for name in users:
        user = ram.users.get(name)
        if user is None:
            table.add_row(name, "", "[bold]deleted[/bold]", "", "")
            continue
        access = [f"AccessKey {k} {v.status}" for k, v in user.access_keys.items()]
        if user.login_profile is not None:
            access.insert(0, "login profile")
        table.add_row(
            name,
            "yes" if user.tags.get("managed-by") == "ramflow" else "no",
            "\n".join(access) or "none",
            "\n".join(sorted(f"{p} @ {s or 'account'}" for _t, p, s in user.policies)) or "none",
            ", ".join(sorted(user.groups)) or "none",
        )
    demo.console.print(table)
