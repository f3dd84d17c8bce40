"""Sealed boxes: only the requester's private key opens them, and tampering is detected."""

from __future__ import annotations

import base64

import pytest
from nacl.public import PrivateKey

from shared.errors import SealedSecretUnreadable, ValidationFailed
from shared.sealing import generate_keypair, looks_sealed, open_sealed, seal

PRIVATE, PUBLIC = generate_keypair()
SECRET = "Zx9!pQ-secret-value-7"


def flip(ciphertext: str, index: int) -> str:
    raw = bytearray(base64.b64decode(ciphertext))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


class TestRoundTrip:
    @pytest.mark.parametrize("plaintext", [SECRET, "密码-пароль-🔑", "x" * 4096, " "])
    def test_seal_then_open(self, plaintext):
        assert open_sealed(PRIVATE, seal(PUBLIC, plaintext)) == plaintext

    def test_ciphertext_is_base64_and_hides_the_secret(self):
        ciphertext = seal(PUBLIC, SECRET)
        assert SECRET not in ciphertext
        assert SECRET.encode() not in base64.b64decode(ciphertext)

    def test_each_seal_is_different_yet_opens(self):
        one, two = seal(PUBLIC, SECRET), seal(PUBLIC, SECRET)
        assert one != two
        assert open_sealed(PRIVATE, one) == open_sealed(PRIVATE, two) == SECRET

    def test_generated_keypairs(self):
        private, public = generate_keypair()
        assert len(base64.b64decode(private)) == 32 and len(base64.b64decode(public)) == 32
        assert bytes(PrivateKey(base64.b64decode(private)).public_key) == base64.b64decode(public)
        assert generate_keypair() != (private, public)


class TestTampering:
    @pytest.mark.parametrize("index", [0, 31, 32, 47, -1])
    def test_any_flipped_bit_is_detected(self, index):
        with pytest.raises(SealedSecretUnreadable):
            open_sealed(PRIVATE, flip(seal(PUBLIC, SECRET), index))

    def test_wrong_private_key(self):
        other_private, _ = generate_keypair()
        with pytest.raises(SealedSecretUnreadable):
            open_sealed(other_private, seal(PUBLIC, SECRET))

    @pytest.mark.parametrize("ciphertext", ["", "not base64!", base64.b64encode(b"short").decode()])
    def test_garbage(self, ciphertext):
        with pytest.raises(SealedSecretUnreadable):
            open_sealed(PRIVATE, ciphertext)

    def test_truncated(self):
        ciphertext = base64.b64decode(seal(PUBLIC, SECRET))
        with pytest.raises(SealedSecretUnreadable):
            open_sealed(PRIVATE, base64.b64encode(ciphertext[:-1]).decode())

    def test_bad_private_key(self):
        with pytest.raises(SealedSecretUnreadable):
            open_sealed(base64.b64encode(b"k" * 31).decode(), seal(PUBLIC, SECRET))

    def test_error_message_reveals_nothing(self):
        with pytest.raises(SealedSecretUnreadable) as caught:
            open_sealed(PRIVATE, flip(seal(PUBLIC, SECRET), 40))
        assert SECRET not in str(caught.value) and PRIVATE not in str(caught.value)


class TestPublicKeys:
    @pytest.mark.parametrize(
        ("key", "reason"),
        [
            ("not base64!", "must be standard base64 of a 32-byte X25519 public key"),
            ("ключ", "must be standard base64 of a 32-byte X25519 public key"),
            (base64.b64encode(b"k" * 31).decode(), "must decode to exactly 32 bytes (an X25519 public key)"),
            (base64.b64encode(b"k" * 64).decode(), "must decode to exactly 32 bytes (an X25519 public key)"),
            (base64.b64encode(bytes(32)).decode(), "is not a usable X25519 public key (a low-order point)"),
            (
                base64.b64encode(bytes([1]) + bytes(31)).decode(),
                "is not a usable X25519 public key (a low-order point)",
            ),
        ],
    )
    def test_unusable_keys_name_the_field(self, key, reason):
        with pytest.raises(ValidationFailed) as caught:
            seal(key, SECRET)
        assert caught.value.errors == [{"field": "data.delivery_public_key", "reason": reason}]
        assert SECRET not in str(caught.value)

    def test_the_private_key_is_not_a_public_key_for_anyone(self):
        # Sealing to the private key's bytes "works", but the real key pair cannot open it.
        with pytest.raises(SealedSecretUnreadable):
            open_sealed(PRIVATE, seal(PRIVATE, SECRET))


class TestLooksSealed:
    def test_sealed(self):
        assert looks_sealed(seal(PUBLIC, "x"))

    @pytest.mark.parametrize(
        "text", [SECRET, "", base64.b64encode(b"x" * 48).decode(), "Abcdefghijklmnopqrstuvwxyz0123"]
    )
    def test_not_sealed(self, text):
        assert not looks_sealed(text)
