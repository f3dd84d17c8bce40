"""Entry point of `make demo` (`python -m local.demo`)."""

from __future__ import annotations

import importlib

from local.demo import run_parts

# The lifecycle, in order. A part that has not been written yet is skipped.
PARTS = [
    "emulator_tour",
    "provisioning",
    "token_vending",
    "webhooks",
    "requester",
    "key_hygiene",
    "offboarding",
]


def main() -> None:
    modules = []
    for name in PARTS:
        try:
            modules.append(importlib.import_module(f"local.demo.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"local.demo.{name}":
                raise
    run_parts(modules)


if __name__ == "__main__":
    main()
