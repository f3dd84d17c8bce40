"""`ramflow report`: the access review — CSV, JSON or one self-contained HTML page."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console

from local.cli import app
from local.cli._context import PROFILE_OPTION, STORE_OPTION, fail, open_store, reading, runtime, target
from local.cli.tickets import duration_option, which_store
from local.report import RENDERERS, Review, safe_store
from local.review import add_drift, add_key_findings, users


@app.command()
def report(
    output_format: str = typer.Option("html", "--format", help="html, csv or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    expiring_within: str = typer.Option("P7D", "--expiring-within", help="Mark grants ending within this."),
    drift: bool = typer.Option(
        False, "--drift", help="Also compare RAM with the ledger (a read-only reconcile: Get*/List* calls)."
    ),
    cloud: str | None = typer.Option(None, help="Cloud endpoint for --drift; as RAMFLOW_CLOUD_ENDPOINT."),
    store: str | None = STORE_OPTION,
    profile: str | None = PROFILE_OPTION,
) -> None:
    """Who holds what, at which scope, approved by whom and when, expiring when, and drift found."""
    from shared.errors import ConfigError, RamflowError
    from shared.flows.reconcile import reconcile
    from shared.policy.catalog import Catalog

    render = RENDERERS.get(output_format)
    if render is None:
        raise fail(f"--format {output_format!r}: use html, csv or json")
    window = duration_option("--expiring-within", expiring_within)
    assert window is not None
    where = target(cloud=cloud, store=store, profile=profile)
    which_store(where, Console(stderr=True, highlight=False, soft_wrap=True))
    try:
        catalog = Catalog.load(where.settings.catalog_path)
    except ConfigError as exc:
        raise fail(f"the catalog {where.settings.catalog_path}: {exc}") from None
    now = datetime.now(timezone.utc)
    with reading(where):
        views = users(open_store(where), catalog=catalog, now=now, window=window)
    if drift:
        rt = runtime(where)
        try:
            checked = reconcile(rt, dry_run=True, remediate=False, actor="ramflow-cli report")
        except RamflowError as exc:
            raise fail(f"--drift: {exc}") from None
        add_drift(views, [(d.user_name, d.kind, d.target) for d in checked.drift])
        add_key_findings(views, [(f.user_name, f.rule, f.access_key_id, f.detail) for f in checked.findings])
    review = Review(
        generated_at=now,
        store=safe_store(where.settings.store),
        window=window,
        drift_checked=drift,
        users=views,
    )
    text = render(review)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"--output {output}: cannot be written ({exc.strerror or type(exc).__name__})") from None
    typer.echo(f"wrote {output} ({len(review.grants)} grants of {len(views)} users)", err=True)
