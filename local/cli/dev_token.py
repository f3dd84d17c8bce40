"""`ramflow dev-token`: a JWT the local development configuration trusts, for trying the token vendor."""

from __future__ import annotations

import typer

from local.cli import app


@app.command("dev-token")
def dev_token(
    sub: str = typer.Option(..., "--sub", help="The application the token names (e.g. demo-app)."),
    ttl: int = typer.Option(3600, "--ttl", min=1, max=86400, help="Seconds until the token expires."),
) -> None:
    """Mint a JWT with the DEVELOPMENT-ONLY key of local/dev (printed on stdout, nothing else)."""
    from local.dev import mint_dev_token

    typer.echo(mint_dev_token(sub, ttl=ttl))
