"""The built packages run by themselves: each `build/<function>/` is imported and invoked in a clean
virtual environment (nothing installed, `python -I`), against the emulator over loopback, exactly as
FC would load it from `/code`. Built once per session, dependencies copied from this environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from alibabacloud_ram20150501 import models as ram_models
from cryptography.hazmat.primitives.asymmetric import rsa

from local import build as builder
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.emulator.server import EmulatorServer
from local.fcruntime.credentials import StaticCredentials
from local.fcruntime.runtime import FcRuntime
from local.fcruntime.signing import EmulatorKeys
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.sealing import generate_keypair
from tests.deploy.test_build_entitlements import entitlements, write_config
from tests.webhooks.conftest import NEW_SECRET, http_event, sign

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
FUNCTIONS = sorted(p.name for p in (REPO / "functions").iterdir() if (p / "index.py").is_file())
VENDED_ROLE = "ramflow-kafka-reader"

# Runs inside the clean interpreter: put the package first on sys.path as FC does with /code, call the
# handler, and report what it returned and where every imported module came from.
RUNNER = r"""
import json, sys, sysconfig
package, function = sys.argv[1], sys.argv[2]
sys.path.insert(0, package)
import index
from shared.fc import FcContext, FcFunction
reply = index.handler(sys.stdin.buffer.read(), FcContext(FcFunction(function, timeout=60)))
if isinstance(reply, (bytes, str)):
    reply = json.loads(reply)
roots = (package, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
outside = sorted({name for name, m in list(sys.modules.items())
                  if getattr(m, "__file__", None) and not m.__file__.startswith(roots)})
try:
    import local  # noqa: F401
    has_local = True
except ImportError:
    has_local = False
print("RESULT " + json.dumps({"reply": reply, "outside": outside, "local": has_local}))
"""


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    """The identity provider's key: the packaged entitlements trust its public half, and only that."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def packaged_entitlements(signing_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    document = entitlements(VENDED_ROLE)
    (jwk,) = document["jwks"]["keys"]
    document["jwks"]["keys"] = [
        {**jwk, **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))}
    ]
    return document


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory, packaged_entitlements: dict[str, Any]) -> Path:
    out = tmp_path_factory.mktemp("build")
    config = write_config(tmp_path_factory.mktemp("config"), packaged_entitlements)
    builder.build(out, mode="venv", config=config)
    return out


def mint(signing_key: rsa.RSAPrivateKey, document: dict[str, Any], app: str) -> str:
    """A JWT from the packaged entitlements' issuer, for their audience, signed with their key."""
    now = int(time.time())
    payload = {
        "iss": document["issuer"],
        "aud": document["audience"],
        "sub": app,
        "iat": now,
        "exp": now + 300,
    }
    kid = document["jwks"]["keys"][0]["kid"]
    return jwt.encode(payload, signing_key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="session")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with nothing installed (not even pip)."""
    venv = tmp_path_factory.mktemp("clean-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True)
    return venv / "bin" / "python"


def sample(name: str, **data: Any) -> bytes:
    event = json.loads((EVENTS / name).read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(data)
    return json.dumps(event).encode()


def run(python: Path, packages: Path, function: str, event: bytes, env: dict[str, str]) -> dict[str, Any]:
    folder = function.replace("-", "_")
    done = subprocess.run(
        [
            str(python),
            "-I",
            "-B",
            "-c",
            RUNNER,
            str(packages / folder),
            function,
        ],  # -B: the package stays as built
        input=event,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, f"{function}: exit {done.returncode}\n{done.stderr.decode()[-3000:]}"
    line = next(x for x in done.stdout.decode().splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    assert result["local"] is False, f"{function}: the package can import local/, which is never deployed"
    assert result["outside"] == [], (
        f"{function}: modules loaded from outside the package: {result['outside']}"
    )
    return result["reply"]


def test_every_function_has_a_package_with_its_handler_shared_and_no_local(packages: Path) -> None:
    built = sorted(p.name for p in packages.iterdir() if not p.name.startswith("."))

    assert built == FUNCTIONS
    for folder in FUNCTIONS:
        package = packages / folder
        assert (package / "index.py").read_bytes() == (REPO / "functions" / folder / "index.py").read_bytes()
        assert (package / "shared" / "policy" / "catalog.yaml").is_file()
        assert not (package / "local").exists() and not (package / "tests").exists()
        manifest = json.loads((package / "BUILD.json").read_text())
        assert manifest["pins"] == [str(p) for p in builder.closure(builder.requirements())]
        assert not list(package.rglob("__pycache__")), "no bytecode of the build machine's Python"


@pytest.mark.timeout(600)  # every function runs in a fresh interpreter, one after the other
@pytest.mark.slow
def test_every_built_handler_imports_and_runs_in_a_clean_environment(
    packages: Path,
    clean_python: Path,
    emulator_server: EmulatorServer,
    root_clients: CloudClients,
    signing_key: rsa.RSAPrivateKey,
    packaged_entitlements: dict[str, Any],
    tmp_path: Path,
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "RAMFLOW_CLOUD_ENDPOINT": emulator_server.endpoint,
        "RAMFLOW_STORE": f"sqlite:///{tmp_path}/state.db",
        "RAMFLOW_RATE_LIMIT_QPS": "1000",
        "RAMFLOW_WEBHOOK_SECRET": NEW_SECRET,
        "RAMFLOW_ENTITLEMENTS": str(packages / "token_vendor" / "config" / "entitlements.yaml"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ROOT_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ROOT_KEY_SECRET,
        "RAMFLOW_ALLOW_UNSCOPED_USERS": "true",  # the sample users carry no managed-user prefix
    }
    # The ingress hands events to their function over InvokeFunction: a local FC runtime serves them.
    functions = FcRuntime(
        keys=EmulatorKeys(emulator_server.emulator),
        credentials=StaticCredentials(CloudCredentials(DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET)),
        environment={k: v for k, v in env.items() if k.startswith(("RAMFLOW_", "ALIBABA_"))},
        account_id=emulator_server.emulator.default_account_id,
    )
    functions.start()
    env["RAMFLOW_FC_ENDPOINT"] = functions.endpoint
    try:
        _run_every_package(
            packages, clean_python, emulator_server, root_clients, signing_key, packaged_entitlements, env
        )
    finally:
        functions.stop()


def _run_every_package(
    packages: Path,
    clean_python: Path,
    emulator_server: EmulatorServer,
    root_clients: CloudClients,
    signing_key: rsa.RSAPrivateKey,
    packaged_entitlements: dict[str, Any],
    env: dict[str, str],
) -> None:
    _, public = generate_keypair()
    users = emulator_server.emulator.account.ram.users
    replies: dict[str, Any] = {}

    # An auto-approved programmatic request: creates the user and an AccessKey through the SDK.
    replies["user-requested"] = run(
        clean_python,
        packages,
        "user-requested",
        sample(
            "user-requested-programmatic.json",
            ticket_id="PKG-1",
            delivery_public_key=public,
            grants=[{"policy": "AliyunKafkaReadOnlyAccess", "type": "System"}],
        ),
        env,
    )
    assert replies["user-requested"]["status"] == "completed", replies["user-requested"]
    assert "orders-etl" in users and users["orders-etl"].access_keys

    # Its key rotated on request: key-rotation makes the second key, sealed to the ticket's key.
    replies["key-rotation"] = run(
        clean_python, packages, "key-rotation", sample("key-rotation-requested.json"), env
    )
    assert replies["key-rotation"]["status"] == "completed", replies["key-rotation"]
    assert len(users["orders-etl"].access_keys) == 2

    approval = sample("access-approved.json", ticket_id="PKG-404")
    replies["access-approved"] = run(clean_python, packages, "access-approved", approval, env)
    assert replies["access-approved"]["status"] == "pending_request"  # kept until its request arrives

    # The same revocation, once through the webhook (signed by the library) and once as an event.
    revocation = sample("access-revoked.json", ticket_id="PKG-1")
    delivery = http_event(revocation, sign(NEW_SECRET, "msg_pkg_1", revocation))
    reply = run(clean_python, packages, "webhook-ingress", delivery, env)
    assert reply["statusCode"] == 200, reply
    replies["webhook-ingress"] = json.loads(reply["body"])
    replies["access-revoked"] = run(clean_python, packages, "access-revoked", revocation, env)
    assert replies["webhook-ingress"]["status"] == "completed", replies["webhook-ingress"]
    assert replies["access-revoked"]["status"] == "completed", replies["access-revoked"]
    # The same CloudEvent: access-revoked's own idempotency record answers with the webhook's reply.
    assert replies["access-revoked"]["actions"] == replies["webhook-ingress"]["actions"] != []

    replies["user-offboarded"] = run(
        clean_python,
        packages,
        "user-offboarded",
        sample("user-offboarded.json", owner="frank@example.com"),
        env,
    )
    assert replies["user-offboarded"]["status"] == "completed", replies["user-offboarded"]
    assert "orders-etl" not in users

    tick = json.dumps({"triggerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "triggerName": "every-15-minutes"})
    replies["reconcile"] = run(clean_python, packages, "reconcile", tick.encode(), env)
    assert replies["reconcile"]["status"] == "completed", replies["reconcile"]

    # The entitled application's token, signed with the key the packaged entitlements trust, is
    # exchanged for the vended role's STS credentials (the role trusts the account, as deployed).
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{emulator_server.emulator.account.account_id}:root"]},
            }
        ],
    }
    root_clients.ram.create_role(
        ram_models.CreateRoleRequest(role_name=VENDED_ROLE, assume_role_policy_document=json.dumps(trust))
    )
    # STS refuses root sessions, so the vendor runs as a RAM user allowed to assume roles.
    root_clients.ram.create_user(ram_models.CreateUserRequest(user_name="token-vendor"))
    root_clients.ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            policy_type="System", policy_name="AliyunSTSAssumeRoleAccess", user_name="token-vendor"
        )
    )
    key = root_clients.ram.create_access_key(
        ram_models.CreateAccessKeyRequest(user_name="token-vendor")
    ).body.access_key
    vendor_keys = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": key.access_key_secret,
    }
    (app,) = packaged_entitlements["apps"]
    (alias,) = packaged_entitlements["apps"][app]["roles"]
    token = mint(signing_key, packaged_entitlements, app)
    request = json.loads(
        http_event(b"", {"Authorization": f"Bearer {token}"}, method="GET", content_type=None)
    )
    request["queryParameters"] = {"role": alias}
    reply = run(clean_python, packages, "token-vendor", json.dumps(request).encode(), {**env, **vendor_keys})
    assert reply["statusCode"] == 200, reply
    replies["token-vendor"] = json.loads(reply["body"])
    assert replies["token-vendor"]["Code"] == "Success", replies["token-vendor"].get("Message")

    # The requester collects the sealed secret of the ticket user-requested completed, with a token of
    # the organisation's identity provider naming them (here the same issuer and key).
    pickup_auth = Path(env["HOME"]) / "pickup-auth.yaml"
    pickup_auth.write_text(json.dumps({k: packaged_entitlements[k] for k in ("issuer", "audience", "jwks")}))
    requester_token = mint(signing_key, packaged_entitlements, "frank@example.com")
    request = json.loads(
        http_event(b"", {"Authorization": f"Bearer {requester_token}"}, method="GET", content_type=None)
    )
    request["queryParameters"] = {"ticket": replies["user-requested"]["ticket_id"]}
    pickup_env = {**env, "RAMFLOW_PICKUP_AUTH": str(pickup_auth)}
    reply = run(clean_python, packages, "credential-pickup", json.dumps(request).encode(), pickup_env)
    assert reply["statusCode"] == 200, reply
    replies["credential-pickup"] = json.loads(reply["body"])
    assert replies["credential-pickup"]["credential"] == replies["user-requested"]["credential"]

    assert sorted(replies) == sorted(f.replace("_", "-") for f in FUNCTIONS)


def test_a_deploy_build_asks_pip_for_the_fc_platform_and_the_tested_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []
    constraints: list[str] = []

    def fake_run(command: list[str], check: bool) -> None:
        commands.append(command)
        if "wheel" in command:  # pure-Python dependencies published as sdists become wheels first
            Path(command[command.index("--wheel-dir") + 1]).mkdir(parents=True)
            return
        target = Path(command[command.index("--target") + 1])
        constraints.extend(Path(command[command.index("--constraint") + 1]).read_text().splitlines())
        (target / "installed-by-pip").write_text("")

    monkeypatch.setattr(builder.subprocess, "run", fake_run)
    monkeypatch.setattr(builder, "_commit", lambda: "test")

    config = write_config(tmp_path / "config", entitlements("ramflow-kafka-reader"))
    built = builder.build(tmp_path, functions=["token-vendor"], mode="pip", config=config)

    wheel, install = commands
    pins = [str(p) for p in builder.closure(builder.requirements())]
    assert set(wheel[wheel.index("--wheel-dir") + 2 :]) < set(pins), "only some pins, all of them tested"
    assert "alibabacloud-tea==0.4.3" in wheel, "published as an sdist only"
    assert "cryptography==50.0.2" not in wheel, "binary wheels come for the FC platform, not built here"
    assert install[install.index("--platform") + 1] == "manylinux2014_x86_64"
    assert install[install.index("--python-version") + 1] == builder.runtime_python_version() == "3.12"
    assert "--only-binary=:all:" in install and "--find-links" in install
    assert "pydantic==2.14.4" in install and "tablestore" not in " ".join(install)
    assert constraints == pins
    assert [p.name for p in built] == ["token_vendor"] and (built[0] / "installed-by-pip").exists()
