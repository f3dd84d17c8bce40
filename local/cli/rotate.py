"""`ramflow rotate --user NAME`: rotate one managed user's AccessKey now, with the overlap.

The same flow as a `ramflow.key.rotation_requested` event: the new key is created (intent first), its
secret sealed to the owner's delivery key; later reconcile passes deactivate and delete the old key.
Run it again to continue an open rotation: each step is idempotent. The reply, with the new secret
sealed, also goes out through the result delivery (the route of source `ramflow-cli`) and waits at
credential-pickup for the holder of the private key, as a rotation requested by event does."""

from __future__ import annotations

import json
import time
import uuid

import typer
from rich.console import Console
from rich.table import Table

from local.cli import app
from local.cli._context import PROFILE_OPTION, STORE_OPTION, refuse_local_store, runtime, target
from local.cli.offboard import EXIT_PARTIAL, fail
from shared.errors import FlowFailed, RamflowError, ValidationFailed
from shared.flows.keys import rotation_requested
from shared.handler import process_event
from shared.models.events import KEY_ROTATION_REQUESTED, CloudEvent, parse_data


@app.command()
def rotate(
    user: str = typer.Option(..., "--user", help="The managed RAM user whose AccessKey is rotated."),
    requested_by: str = typer.Option(
        "operator@localhost.localdomain", "--requested-by", help="Who asks (an e-mail; kept in the audit)."
    ),
    reason: str | None = typer.Option(None, help="Why (kept in the audit)."),
    public_key: str | None = typer.Option(
        None,
        "--public-key",
        help="Seal the new secret to this X25519 public key (default: the key of the user's latest ticket).",
    ),
    cloud: str | None = typer.Option(
        None, help="Cloud endpoint (the emulator's URL); as RAMFLOW_CLOUD_ENDPOINT."
    ),
    store: str | None = STORE_OPTION,
    profile: str | None = PROFILE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the reply JSON instead of a table."),
) -> None:
    """Rotate a user's AccessKey: a second key now, the old one deactivated and deleted later."""
    console = Console(highlight=False, soft_wrap=True)
    data = {"user_name": user, "requested_by": requested_by}
    if reason:
        data["reason"] = reason
    if public_key:
        data["delivery_public_key"] = public_key
    event = CloudEvent.model_validate(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "ramflow-cli",
            "type": KEY_ROTATION_REQUESTED,
            "data": data,
        }
    )
    try:
        parsed = parse_data(event)
    except ValidationFailed as exc:
        raise fail(console, "; ".join(f"{e['field']}: {e['reason']}" for e in exc.errors)) from None
    where = target(cloud=cloud, store=store, profile=profile)
    refuse_local_store(where, "ramflow rotate")
    del parsed  # valid: process_event reads it again
    try:
        rt = runtime(where)
        # The path key-rotation takes: idempotent, and the new secret goes out through the result
        # delivery (RAMFLOW_DESTINATIONS' route for `ramflow-cli`, credential-pickup) like any result.
        result = process_event(
            event,
            {KEY_ROTATION_REQUESTED: rotation_requested},
            rt,
            owner=f"ramflow-cli/{uuid.uuid4()}",
            lease_until=time.time() + rt.settings.idempotency_lease_seconds,
        )
    except FlowFailed as exc:
        result = exc.result
    except RamflowError as exc:
        raise fail(console, str(exc)) from None
    if as_json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    elif result.status == "rejected":
        console.print(f"[red]refused:[/red] {'; '.join(e.reason for e in result.errors)}")
    else:
        rotation = (result.plan or {}).get("rotation", {})
        table = Table("what", "value", title=f"AccessKey rotation of {user}")
        for name in ("state", "old_key_id", "new_key_id", "deactivate_after", "delete_after", "hold_reason"):
            if rotation.get(name):
                table.add_row(name, str(rotation[name]))
        console.print(table)
        if result.credential is not None:
            console.print("the new secret is sealed to the owner's key: `--json` prints the ciphertext")
    if result.status != "completed":
        raise typer.Exit(EXIT_PARTIAL if result.status != "rejected" else 1)
