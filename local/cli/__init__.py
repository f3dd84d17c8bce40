"""`ramflow`: the operator CLI. Each command lives in its own module and registers itself here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ramflow",
    help="ramflow: RAM user lifecycle and STS token vending for Alibaba Cloud, run and operated from here.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)


@app.callback()
def main() -> None:
    """ramflow: RAM user lifecycle and STS token vending for Alibaba Cloud."""


def _register() -> None:
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_register()
