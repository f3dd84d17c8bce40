"""`ramflow keygen`: the requester's X25519 key pair for a request's `delivery_public_key`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from local.cli import app
from shared.errors import BadRequest


@app.command()
def keygen(
    out: Path = typer.Option(
        ..., "--out", dir_okay=False, help="Where to write the private key (mode 0600)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing key file."),
) -> None:
    """Write a new private key to FILE (0600) and print its public key: the request's delivery_public_key.

    ramflow seals the one-time secret to that public key; only this file opens it (`ramflow unseal`).
    """
    from local.requester import write_private_key

    try:
        public = write_private_key(out, force=force)
    except (BadRequest, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"private key written to {out} (mode 0600); put this in the request:", file=sys.stderr)
    print(public)
