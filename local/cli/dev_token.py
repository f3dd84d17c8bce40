"""`ramflow dev-token`: a JWT the local development configuration trusts, for trying the token vendor."""

from __future__ import annotations

from typing import Any

import typer

from local.cli import app


@app.command("dev-token")
def dev_token(
    sub: str = typer.Option(..., "--sub", help="The application the token names (e.g. demo-app)."),
    ttl: int = typer.Option(3600, "--ttl", min=1, max=86400, help="Seconds until the token expires."),
    pickup: bool = typer.Option(
        False, "--pickup", help="For credential-pickup (its audience) instead of the token vendor."
    ),
    email: str | None = typer.Option(None, "--email", help="An `email` claim (pickup matches it too)."),
) -> None:
    """Mint a JWT with the DEVELOPMENT-ONLY key of local/dev (printed on stdout, nothing else)."""
    from local.dev import DEV_ENTITLEMENTS, DEV_PICKUP_AUTH, mint_dev_token

    claims: dict[str, Any] = {"email": email} if email else {}
    issuer_file = DEV_PICKUP_AUTH if pickup else DEV_ENTITLEMENTS
    typer.echo(mint_dev_token(sub, ttl=ttl, entitlements=issuer_file, **claims))
