"""`ramflow unseal`: open the sealed secret of a reply, a result event or a pickup answer.

The secret is read from a file or stdin and written to stdout or a CLI profile, never taken from or
put on the command line, so it stays out of shell history and process listings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from local.cli import app
from shared.errors import BadRequest, SealedSecretUnreadable


@app.command()
def unseal(
    key: Path = typer.Option(
        ..., "--key", exists=True, dir_okay=False, help="The `ramflow keygen` key file."
    ),
    source: Path | None = typer.Option(
        None, "--in", exists=True, dir_okay=False, help="The JSON to open (default: stdin)."
    ),
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="Write the AccessKey as this profile of ~/.aliyun/config.json (Alibaba Cloud CLI and "
        "alibabacloud-credentials, ALIBABA_CLOUD_PROFILE=NAME) instead of printing it.",
    ),
    config_file: Path | None = typer.Option(
        None,
        "--config-file",
        dir_okay=False,
        help="Another CLI configuration file (default ~/.aliyun/config.json).",
    ),
    region: str = typer.Option("cn-hangzhou", "--region", help="region_id of the written profile."),
) -> None:
    """Print the secret sealed in a reply, a result event or a credential-pickup answer, or write a profile."""
    from local.requester import read_private_key, write_cli_profile
    from local.requester import unseal as open_document

    try:
        text = source.read_bytes() if source is not None else sys.stdin.buffer.read()
        opened = open_document(read_private_key(key), text)
        if profile is None:
            print(opened.secret)
            return
        written = write_cli_profile(opened, profile, config_file=config_file, region=region)
    except (BadRequest, SealedSecretUnreadable, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(
        f"AccessKey {opened.identifier} (ticket {opened.ticket_id or '?'}) written as profile {profile!r} "
        f"of {written} (mode 0600); use it with ALIBABA_CLOUD_PROFILE={profile} or --profile {profile}",
        file=sys.stderr,
    )
