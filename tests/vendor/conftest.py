"""Fixtures for the token vendor: signing keys, a JWKS trusting them, and the local stack.

The stack is the one `ramflow serve` runs (seeded emulator + local FC runtime), on the test's own
`emulator_server` so tests can read its recorder and inject latency.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from local.dev import DEV_ENTITLEMENTS, DEV_JWKS, DEV_KEY_ID, DEV_SIGNING_KEY
from local.emulator.core import Emulator
from local.emulator.server import EmulatorServer
from local.fcruntime.stack import LocalStack
from local.seed import DevConfig

ISSUER = "https://dev-issuer.ramflow.invalid"
AUDIENCE = "ramflow-token-vendor"
STS_ACTIONS = {"AssumeRole", "GetCallerIdentity"}


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def jwks(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The dev key plus a test RSA key and a test P-256 key."""
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    rsa_jwk.update(kid="test-rsa", alg="RS256", use="sig")
    ec_jwk.update(kid="test-ec", alg="ES256", use="sig")
    dev = json.loads(DEV_JWKS.read_text())["keys"]
    return {"keys": [*dev, rsa_jwk, ec_jwk]}


@pytest.fixture(autouse=True)
def dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests trust the development issuer and key (local/dev/), as `ramflow serve` does."""
    monkeypatch.setenv("RAMFLOW_DEV_MODE", "1")


Mint = Callable[..., str]


@pytest.fixture(scope="session")
def mint(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> Mint:
    """mint(sub="demo-app", alg="RS256"|"ES256"|"dev", ttl=600, **claim overrides; None drops a claim)."""

    def make(sub: str | None = "demo-app", *, alg: str = "RS256", ttl: int = 600, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + ttl}
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        if alg == "ES256":
            return jwt.encode(payload, ec_key, algorithm="ES256", headers={"kid": "test-ec"})
        if alg == "dev":
            return jwt.encode(
                payload, DEV_SIGNING_KEY.read_text(), algorithm="RS256", headers={"kid": DEV_KEY_ID}
            )
        return jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": "test-rsa"})

    return make


@pytest.fixture
def entitlements_file(tmp_path: Path, jwks: dict[str, Any]) -> Path:
    """The development entitlements, trusting the test keys too."""
    raw = yaml.safe_load(DEV_ENTITLEMENTS.read_text())
    raw.pop("jwks_file")
    raw["jwks"] = jwks
    path = tmp_path / "entitlements.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def dev_config(entitlements_file: Path) -> DevConfig:
    config = DevConfig.load()
    config.entitlements = entitlements_file
    return config


@pytest.fixture
def stack(emulator_server: EmulatorServer, dev_config: DevConfig, tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(dev_config, emulator_server=emulator_server, workdir=tmp_path) as running:
        yield running


@pytest.fixture
def vendor_url(stack: LocalStack) -> str:
    assert stack.runtime is not None
    return stack.runtime.url("token-vendor")


@pytest.fixture
def sts_calls(emulator: Emulator, stack: LocalStack) -> Callable[[], list[str]]:
    """STS calls the emulator answered since the stack was up (seeding and the runtime's own role excluded)."""
    mark = emulator.recorder.last_seq
    return lambda: [c.action for c in emulator.recorder.since(mark) if c.service == "sts"]
