"""`ramflow emulator` as its own process: the options reach the emulator and it serves the SDK."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException

from local.testing import REPO
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings

KEY_ID, SECRET = "AKTEST", "secret-for-test"
READY = re.compile(r"emulator ready on (http://127\.0\.0\.1:\d+) ")
READ_USERS = (
    '{"Version":"1","Statement":[{"Effect":"Allow","Action":["ram:GetUser","ram:ListUsers"],"Resource":"*"}]}'
)
STARTUP_TIMEOUT = 30.0


@contextmanager
def emulator_process(*args: str) -> Iterator[str]:
    """Start `ramflow emulator --port 0 ARGS`, yield its endpoint once it says it is ready, stop it.

    Lines are read on a thread so a child that never gets ready fails the test instead of hanging it.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", "from local.cli import app; app()", "emulator", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)  # end of output: the child exited

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=STARTUP_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no ready line within {STARTUP_TIMEOUT}s: {''.join(seen)!r}")
            if line is None:
                pytest.fail(f"emulator exited before it was ready: {''.join(seen)!r}")
            seen.append(line)
            ready = READY.search(line)
            if ready:
                break
        yield ready.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def test_emulator_command_serves_its_root_key_and_alias() -> None:
    with emulator_process("--root-key", f"{KEY_ID}:{SECRET}", "--account-alias", "cli-test") as endpoint:
        settings = Settings(cloud_endpoint=endpoint)
        clients = CloudClients(settings, CloudCredentials(KEY_ID, SECRET))
        assert clients.ram.get_account_alias().body.account_alias == "cli-test"

        wrong = CloudClients(settings, CloudCredentials(KEY_ID, "not-the-secret"))
        with pytest.raises(ClientException) as info:
            wrong.ram.get_account_alias()
        assert info.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("enforced", [True, False])
def test_enforce_makes_every_non_root_caller_hold_a_policy(enforced: bool) -> None:
    """`--enforce`: a RAM user's key may do what its policies allow and gets NoPermission otherwise;
    the root key is never refused. Without it, every authenticated caller may do anything."""
    args = ("--root-key", f"{KEY_ID}:{SECRET}", *(("--enforce",) if enforced else ()))
    with emulator_process(*args) as endpoint:
        settings = Settings(cloud_endpoint=endpoint)
        root = CloudClients(settings, CloudCredentials(KEY_ID, SECRET)).ram
        root.create_user(ram_models.CreateUserRequest(user_name="reader"))
        root.create_policy(
            ram_models.CreatePolicyRequest(policy_name="read-users", policy_document=READ_USERS)
        )
        root.attach_policy_to_user(
            ram_models.AttachPolicyToUserRequest(
                policy_type="Custom", policy_name="read-users", user_name="reader"
            )
        )
        key = root.create_access_key(ram_models.CreateAccessKeyRequest(user_name="reader")).body.access_key
        reader = CloudClients(settings, CloudCredentials(key.access_key_id, key.access_key_secret)).ram

        assert reader.get_user(ram_models.GetUserRequest(user_name="reader")).body.user.user_name == "reader"
        if enforced:
            with pytest.raises(ClientException) as info:
                reader.create_access_key(ram_models.CreateAccessKeyRequest(user_name="reader"))
            assert info.value.code == "NoPermission"
        else:
            reader.create_access_key(ram_models.CreateAccessKeyRequest(user_name="reader"))
