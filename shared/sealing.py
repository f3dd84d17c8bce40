"""Seal one-time secrets to the requester's X25519 key (libsodium sealed box).

ramflow never holds a key that can open what it seals: the requester keeps the private key, so a
password or AccessKey secret exists in plain text only inside the function that created it.

libsodium (PyNaCl) is imported by the functions that use it, not with this module: replies only
check that a secret looks sealed, and most functions never seal or open one.
"""

from __future__ import annotations

import base64
import binascii

from shared.errors import SealedSecretUnreadable, ValidationFailed

PUBLIC_KEY_FIELD = "data.delivery_public_key"
KEY_BYTES = 32
SEAL_OVERHEAD = 48  # ephemeral public key (32) + Poly1305 tag (16)


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def check_public_key(public_key_b64: str) -> bytes:
    """The raw key, or ValueError saying why it is unusable (never echoing it)."""
    from nacl.exceptions import CryptoError
    from nacl.public import PublicKey, SealedBox

    try:
        raw = _b64decode(public_key_b64)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("must be standard base64 of a 32-byte X25519 public key") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"must decode to exactly {KEY_BYTES} bytes (an X25519 public key)")
    try:
        SealedBox(PublicKey(raw)).encrypt(b"probe")  # low-order points (all-zero and kin) fail here
    except CryptoError:
        raise ValueError("is not a usable X25519 public key (a low-order point)") from None
    return raw


def generate_keypair() -> tuple[str, str]:
    """A fresh `(private_b64, public_b64)`, for the requester's side and for demos."""
    from nacl.public import PrivateKey

    private = PrivateKey.generate()
    return (
        base64.b64encode(bytes(private)).decode("ascii"),
        base64.b64encode(bytes(private.public_key)).decode("ascii"),
    )


def seal(public_key_b64: str, plaintext: str) -> str:
    """Encrypt `plaintext` so that only the holder of the matching private key can read it."""
    from nacl.exceptions import CryptoError
    from nacl.public import PublicKey, SealedBox

    message = plaintext.encode("utf-8")
    try:
        box = SealedBox(PublicKey(check_public_key(public_key_b64)))
        return base64.b64encode(box.encrypt(message)).decode("ascii")
    except (ValueError, CryptoError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "is not a usable X25519 public key"
        raise ValidationFailed([{"field": PUBLIC_KEY_FIELD, "reason": reason}]) from None


def open_sealed(private_key_b64: str, ciphertext_b64: str) -> str:
    """Decrypt a sealed secret; a wrong key or an altered ciphertext raises SealedSecretUnreadable."""
    from nacl.exceptions import CryptoError
    from nacl.public import PrivateKey, SealedBox

    try:
        private = PrivateKey(_b64decode(private_key_b64))
        return SealedBox(private).decrypt(_b64decode(ciphertext_b64)).decode("utf-8")
    except (binascii.Error, ValueError, TypeError, CryptoError, UnicodeError):
        raise SealedSecretUnreadable(
            "the sealed secret could not be opened: wrong private key or altered ciphertext"
        ) from None


def looks_sealed(ciphertext_b64: str) -> bool:
    """True for base64 long enough to be a sealed box: a guard against plain secrets in replies."""
    try:
        return len(_b64decode(ciphertext_b64)) > SEAL_OVERHEAD
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
