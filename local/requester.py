"""The requester's side: a key pair for `delivery_public_key`, and opening what comes back.

What comes back is one of three JSON documents, all holding the same `credential` object (ciphertext
only): a function's reply, a result event (a CloudEvent whose `data` is that reply) or a
`credential-pickup` answer. `find_credential` accepts any of them (and an EventBridge-style list).

The opened secret goes to stdout or into a profile of the Alibaba Cloud CLI configuration,
`~/.aliyun/config.json`, which `alibabacloud-credentials` reads unchanged (its
`CLIProfileCredentialsProvider`, chosen by `ALIBABA_CLOUD_PROFILE`). The format — `current`, and
`profiles[]` of `{name, mode: "AK", access_key_id, access_key_secret, region_id, output_format,
language}` — is the CLI's: https://raw.githubusercontent.com/aliyun/aliyun-cli/v3.5.1/docs/en/configuration.md
and alibabacloud_credentials/provider/cli_profile.py (`_get_credentials_provider`, mode "AK").
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey

from shared.errors import BadRequest, SealedSecretUnreadable
from shared.sealing import generate_keypair, open_sealed

PRIVATE_KEY_HEADER = "# ramflow delivery private key (X25519, base64). Keep it 0600; never share it.\n"
CLI_CONFIG = Path("~/.aliyun/config.json")
PROFILE_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


@dataclass(frozen=True)
class Opened:
    """An opened credential: what it is, the id or principal in clear, and the secret."""

    kind: str
    ticket_id: str | None
    identifier: str
    secret: str = field(repr=False)


def write_private_key(path: Path, *, force: bool = False) -> str:
    """Create a key pair, write the private half to `path` (mode 0600, never over a file unless
    `force`), and return the public half as the request's `delivery_public_key`."""
    private_b64, public_b64 = generate_keypair()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise BadRequest(f"{path} exists: keep that key, or pass --force to replace it") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        os.fchmod(out.fileno(), 0o600)  # O_TRUNC keeps an existing file's mode
        out.write(PRIVATE_KEY_HEADER + private_b64 + "\n")
    return public_b64


def read_private_key(path: Path) -> str:
    """The base64 private key of a `ramflow keygen` file (comment lines skipped)."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read the key file {path}: {type(exc).__name__}") from None
    body = "".join(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise BadRequest(f"{path} is not a ramflow keygen file (base64 of a 32-byte X25519 private key)")
    return body


def public_key_of(private_b64: str) -> str:
    return base64.b64encode(bytes(PrivateKey(base64.b64decode(private_b64)).public_key)).decode("ascii")


def _credentials_in(document: Any) -> Iterator[dict[str, Any]]:
    """Every credential object in a reply, a result event, a pickup answer or a list of them."""
    if isinstance(document, dict):
        credential = document.get("credential")
        if isinstance(credential, dict) and credential.get("kind") in {"access_key", "login_profile"}:
            yield {**credential, "_ticket": document.get("ticket_id")}
        for key, value in document.items():
            if key != "credential":
                yield from _credentials_in(value)
    elif isinstance(document, list):
        for item in document:
            yield from _credentials_in(item)


def find_credential(text: str | bytes) -> dict[str, Any]:
    """The one sealed credential in the document; BadRequest names what is wrong."""
    try:
        document = json.loads(text)
    except ValueError:
        raise BadRequest("the input is not JSON (a reply, a result event or a pickup answer)") from None
    found = list(_credentials_in(document))
    if not found:
        status = document.get("status") if isinstance(document, dict) else None
        hint = f" (status {status!r})" if status else ""
        raise BadRequest(f"the input holds no sealed credential{hint}")
    if len({json.dumps(c, sort_keys=True) for c in found}) > 1:
        raise BadRequest("the input holds more than one credential: give one reply at a time")
    return found[0]


def unseal(private_b64: str, text: str | bytes) -> Opened:
    """Open the credential in `text` with the private key; SealedSecretUnreadable on a wrong key."""
    credential = find_credential(text)
    if credential["kind"] == "access_key":
        sealed, identifier = credential.get("sealed_secret"), credential.get("access_key_id")
    else:
        sealed, identifier = credential.get("sealed_password"), credential.get("logon_principal")
    if not isinstance(sealed, str) or not isinstance(identifier, str):
        raise BadRequest(f"the {credential['kind']} credential is incomplete")
    secret = open_sealed(private_b64, sealed)
    return Opened(credential["kind"], credential.get("_ticket"), identifier, secret)


def write_cli_profile(
    opened: Opened, profile: str, *, config_file: Path | None = None, region: str = "cn-hangzhou"
) -> Path:
    """Add or replace profile `profile` (mode AK) in the CLI configuration; the file ends up 0600.

    Other profiles and settings are kept. The file is replaced atomically (a temporary file in the
    same folder, created 0600, then renamed), so a reader never sees half a file."""
    if opened.kind != "access_key":
        raise BadRequest("a console password cannot be a CLI profile: print it and sign in to the console")
    if not profile or not set(profile) <= PROFILE_NAME_CHARS or len(profile) > 64:
        raise BadRequest("--profile must be 1 to 64 of [A-Za-z0-9._-]")
    path = (config_file or CLI_CONFIG).expanduser()
    config: dict[str, Any] = {"current": profile, "profiles": [], "meta_path": ""}
    if path.exists():
        try:
            config = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError) as exc:
            raise BadRequest(f"cannot read {path}: {type(exc).__name__}; fix or move it first") from None
        if not isinstance(config, dict) or not isinstance(config.setdefault("profiles", []), list):
            raise BadRequest(f"{path} is not an Alibaba Cloud CLI configuration (no 'profiles' list)")
    entry = {
        "name": profile,
        "mode": "AK",
        "access_key_id": opened.identifier,
        "access_key_secret": opened.secret,
        "region_id": region,
        "output_format": "json",
        "language": "en",
    }
    config["profiles"] = [
        p for p in config["profiles"] if not (isinstance(p, dict) and p.get("name") == profile)
    ]
    config["profiles"].append(entry)
    config.setdefault("current", profile)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=".config-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(config, out, indent=2)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)
    return path


__all__ = [
    "Opened",
    "SealedSecretUnreadable",
    "find_credential",
    "public_key_of",
    "read_private_key",
    "unseal",
    "write_cli_profile",
    "write_private_key",
]
