"""`make demo`: the whole ramflow lifecycle on the embedded emulator, printed step by step.

Each part of the lifecycle is a module here with `run(demo: Demo) -> None`; `PARTS` orders them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer
from local.seed import DevConfig, seed_resource_groups
from shared.audit import configure_audit
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings


@dataclass
class Demo:
    console: Console
    server: EmulatorServer
    workdir: Path
    settings: Settings
    facts: dict[str, Any] = field(default_factory=dict)  # what one part leaves for the next

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    @property
    def root_credentials(self) -> CloudCredentials:
        return CloudCredentials(DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET)

    @property
    def root_clients(self) -> CloudClients:
        return CloudClients(self.settings, self.root_credentials)

    def env(self) -> dict[str, str]:
        """The environment a function sees locally: emulator endpoint, demo store, root credentials."""
        return {
            "RAMFLOW_CLOUD_ENDPOINT": self.server.endpoint,
            "RAMFLOW_STORE": self.settings.store,
            "RAMFLOW_AUDIT_PATH": str(self.workdir / "audit.jsonl"),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ROOT_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ROOT_KEY_SECRET,
            # the sample events' users carry no managed-user prefix: as the development configuration
            "RAMFLOW_ALLOW_UNSCOPED_USERS": "true",
        }

    def section(self, title: str) -> None:
        self.console.rule(f"[bold cyan]{title}")

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def show(self, title: str, body: str) -> None:
        self.console.print(Panel(body, title=title, expand=False))


@contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_parts(parts: list[Any]) -> None:
    console = Console(width=110, emoji=False)
    with tempfile.TemporaryDirectory(prefix="ramflow-demo-") as tmp, EmulatorServer(Emulator()) as server:
        workdir = Path(tmp)
        settings = Settings(
            cloud_endpoint=server.endpoint,
            store=f"sqlite:///{workdir}/state.db",
            audit_path=workdir / "audit.jsonl",
        )
        demo = Demo(console, server, workdir, settings)
        seed_resource_groups(DevConfig.load(), emulator=server.emulator)  # what events/ name
        console.print(
            Panel.fit(
                f"ramflow demo: local Alibaba Cloud emulator on {server.endpoint}\n"
                f"account {server.emulator.account.account_id} "
                f"(alias {server.emulator.account.alias})",
                style="bold",
            )
        )
        with patched_env(demo.env()):
            try:
                for part in parts:
                    part.run(demo)
            finally:
                configure_audit(None)  # the audit file goes with the demo's folder: stop appending to it
        calls = server.emulator.recorder.calls
        console.rule("[bold cyan]Summary")
        console.print(
            f"{len(calls)} cloud API calls answered by the emulator, "
            f"{sum(1 for c in calls if c.outcome != 'OK')} of them errors (expected ones included)."
        )
