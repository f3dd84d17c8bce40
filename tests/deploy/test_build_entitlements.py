"""`make build` refuses a token-vendor package that could not serve: its entitlements are packaged
(`config/entitlements.yaml`, read in FC as `/code/config/entitlements.yaml`), load, and name only
roles the functions' role may assume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from local import build as builder
from local import roles

ACCOUNT = "5123456789012345"


def entitlements(*role_names: str) -> dict[str, Any]:
    """A deployable entitlements document: a non-development issuer and a fresh public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    jwk = {
        **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key)),
        "kid": "idp-1",
        "alg": "RS256",
        "use": "sig",
    }
    aliases = {f"alias-{i}": name for i, name in enumerate(role_names)}
    return {
        "version": 1,
        "issuer": "https://id.example.test",
        "audience": "ramflow-token-vendor",
        "jwks": {"keys": [jwk]},
        "roles": {alias: {"role_arn": f"acs:ram::{ACCOUNT}:role/{name}"} for alias, name in aliases.items()},
        "apps": {"orders-service": {"roles": sorted(aliases)}},
    }


def write_config(folder: Path, document: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "entitlements.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return folder


@pytest.fixture
def no_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dependency step is another test's business: an empty folder stands in for it."""
    monkeypatch.setattr(
        builder, "install_dependencies", lambda target, *args, **kwargs: target.mkdir(parents=True)
    )
    monkeypatch.setattr(builder, "_commit", lambda: "test")


def build_vendor(out: Path, config: Path) -> list[Path]:
    return builder.build(out, functions=["token-vendor"], mode="venv", config=config)


def test_a_token_vendor_without_entitlements_is_not_built(tmp_path: Path, no_dependencies: None) -> None:
    empty = tmp_path / "config"
    empty.mkdir()

    with pytest.raises(SystemExit) as refused:
        build_vendor(tmp_path / "out", empty)

    message = str(refused.value)
    assert str(empty / "entitlements.yaml") in message
    assert "/code/config/entitlements.yaml" in message and "--config" in message
    assert not (tmp_path / "out" / "token_vendor").exists()


def test_entitlements_that_do_not_load_stop_the_build(tmp_path: Path, no_dependencies: None) -> None:
    broken = entitlements("ramflow-reader")
    del broken["issuer"]

    with pytest.raises(SystemExit) as refused:
        build_vendor(tmp_path / "out", write_config(tmp_path / "config", broken))

    assert "issuer" in str(refused.value)
    assert not (tmp_path / "out" / "token_vendor").exists()


@pytest.mark.parametrize("role", ["payments-reader", "ramflow-fn-access-approved"])
def test_a_role_the_functions_role_may_not_assume_stops_the_build(
    tmp_path: Path, no_dependencies: None, role: str
) -> None:
    config = write_config(tmp_path / "config", entitlements("ramflow-reader", role))

    with pytest.raises(SystemExit) as refused:
        build_vendor(tmp_path / "out", config)

    message = str(refused.value)
    assert f"role_arn acs:ram::{ACCOUNT}:role/{role}" in message
    assert "ramflow-reader" not in message, "only the roles at fault are named"
    assert roles.VENDED_ROLE_PATTERN in message


def test_usable_entitlements_are_packaged(tmp_path: Path, no_dependencies: None) -> None:
    config = write_config(tmp_path / "config", entitlements("ramflow-reader", "ramflow-operator"))

    (package,) = build_vendor(tmp_path / "out", config)

    packaged = package / "config" / "entitlements.yaml"
    assert packaged.read_bytes() == (config / "entitlements.yaml").read_bytes()


def test_the_other_functions_do_not_need_entitlements(tmp_path: Path, no_dependencies: None) -> None:
    empty = tmp_path / "config"
    empty.mkdir()

    (package,) = builder.build(tmp_path / "out", functions=["reconcile"], mode="venv", config=empty)

    assert (package / "index.py").is_file()


def test_the_development_trust_copied_from_local_dev_stops_the_build(
    tmp_path: Path, no_dependencies: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copied as the missing-file message describes, local/dev's entitlements would deploy a vendor
    that refuses its own configuration: the build says so instead."""
    monkeypatch.delenv("RAMFLOW_DEV_MODE", raising=False)
    config = tmp_path / "config"
    config.mkdir()
    for name in ("entitlements.yaml", "jwks.json"):
        (config / name).write_bytes((builder.REPO / "local" / "dev" / name).read_bytes())

    with pytest.raises(SystemExit) as refused:
        build_vendor(tmp_path / "out", config)

    assert "development issuer" in str(refused.value) and "RAMFLOW_DEV_MODE=1" in str(refused.value)
    assert not (tmp_path / "out" / "token_vendor").exists()

    monkeypatch.setenv("RAMFLOW_DEV_MODE", "1")  # development mode packages it (local use)
    (package,) = build_vendor(tmp_path / "out", config)
    assert (package / "config" / "entitlements.yaml").is_file()


def test_a_development_key_under_another_issuer_stops_the_build(
    tmp_path: Path, no_dependencies: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAMFLOW_DEV_MODE", raising=False)
    document = entitlements("ramflow-reader")
    document["jwks"] = json.loads((builder.REPO / "local" / "dev" / "jwks.json").read_text())

    with pytest.raises(SystemExit) as refused:
        build_vendor(tmp_path / "out", write_config(tmp_path / "config", document))

    assert "development key" in str(refused.value)


def test_destinations_whose_buses_the_roles_may_not_publish_on_stop_the_build(tmp_path: Path) -> None:
    """config/destinations.yaml is packaged as /code/config/destinations.yaml: its result buses must be
    the ones deploy/ allows, or every EventBridge delivery would be refused and end dead."""
    config = tmp_path / "config"
    config.mkdir()
    builder.check_destinations(config)  # no file: nothing to check (results go nowhere)
    route = "routes:\n  - {name: itsm, source: itsm.example.com, eventbridge: {bus: %s}}\n"
    (config / builder.DESTINATIONS_FILE).write_text(route % roles.DEFAULT_RESULT_BUSES[0])
    builder.check_destinations(config)  # the committed documents allow it
    (config / builder.DESTINATIONS_FILE).write_text(route % "itsm-results")
    with pytest.raises(SystemExit, match=r"ramflow-fn-reconcile: itsm-results.*--write-policy"):
        builder.check_destinations(config)
    (config / builder.DESTINATIONS_FILE).write_text(route % "default")
    with pytest.raises(SystemExit, match="cannot build: .*not 'default'"):
        builder.check_destinations(config)
