"""The delivery loop of the local runtime: what the reconcile timer does in FC, every fraction of a second.

It runs `shared.delivery.deliver_due` with the functions' own settings and, like FC's reconcile timer,
a session of reconcile's role (the one that retries deliveries, local/roles.py), so results and
notices that could not be sent at once (a receiver down, a bus missing) are retried on their schedule
while `ramflow serve` runs, and a restarted `ramflow serve` on the same store resumes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from local.fcruntime.credentials import CredentialSource
from local.roles import ROLES
from shared.cloud.clients import CloudCredentials
from shared.config import Settings
from shared.delivery import deliver_due
from shared.runtime import runtime_for

log = logging.getLogger("ramflow.fcruntime.delivery")


DISPATCHER_ROLE = ROLES["reconcile"].role


class DeliveryLoop:
    def __init__(self, credentials: Callable[[], CredentialSource], *, interval: float = 0.25):
        self.credentials = credentials  # read on every pass: the runtime's source changes on a reset
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        settings = Settings.from_env()
        if settings.destinations_path is None:
            return
        source = self.credentials()
        for_role = getattr(source, "for_role", None)
        session = for_role(DISPATCHER_ROLE) if callable(for_role) else source.get()
        credentials = (
            CloudCredentials(session.access_key_id, session.access_key_secret, session.security_token)
            if session is not None
            else CloudCredentials("none", "none")  # webhooks need no cloud credentials
        )
        deliver_due(runtime_for(settings, credentials))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:  # keep going: the records stay in the store
                log.warning("delivery pass failed: %s", type(exc).__name__)

    def start(self) -> DeliveryLoop:
        self._thread = threading.Thread(target=self._loop, name="ramflow-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
