"""JWT verification: only RS256/ES256 tokens from the configured issuer, for the configured audience."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from local.dev import DEV_ENTITLEMENTS, DEV_JWKS, DEV_KEY_ID
from shared import tokens
from shared.entitlements import Entitlements
from shared.errors import AuthenticationFailed, ConfigError
from shared.flows.vend import TokenVendor
from shared.tokens import JwtVerifier, load_jwks
from tests.vendor.conftest import AUDIENCE, ISSUER, Mint


@pytest.fixture
def verifier(jwks: dict[str, Any]) -> JwtVerifier:
    return JwtVerifier(load_jwks(jwks), issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30)


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["RS256", "ES256", "dev"])
def test_accepts_rs256_and_es256(verifier: JwtVerifier, mint: Mint, alg: str) -> None:
    claims = verifier.verify(mint("demo-app", alg=alg))
    assert claims.subject == "demo-app"
    assert claims.issuer == ISSUER


def test_expiry_has_a_small_leeway(verifier: JwtVerifier, mint: Mint) -> None:
    assert verifier.verify(mint(ttl=-10)).subject == "demo-app"
    with pytest.raises(AuthenticationFailed, match="expired"):
        verifier.verify(mint(ttl=-31))


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.invalid"}, "issuer"),
        ({"aud": "someone-else"}, "audience"),
        ({"exp": None}, "exp"),
        ({"iss": None}, "iss"),
        ({"aud": None}, "aud"),
        ({"sub": None}, "sub"),
        ({"sub": "  "}, "sub"),
    ],
)
def test_claims_are_checked(verifier: JwtVerifier, mint: Mint, claims: dict[str, Any], reason: str) -> None:
    sub = claims.pop("sub", "demo-app")
    with pytest.raises(AuthenticationFailed, match=reason):
        verifier.verify(mint(sub, **claims))


def test_a_token_not_valid_yet_is_refused(verifier: JwtVerifier, mint: Mint) -> None:
    # nbf is taken at run time: a value fixed at collection would age with a long suite
    with pytest.raises(AuthenticationFailed, match="not valid yet"):
        verifier.verify(mint("demo-app", nbf=int(time.time()) + 600))


def test_a_token_without_iat_is_refused(verifier: JwtVerifier, mint: Mint) -> None:
    with pytest.raises(AuthenticationFailed, match="'iat'"):
        verifier.verify(mint(iat=None))


def test_a_token_older_than_the_maximum_age_is_refused(jwks: dict[str, Any], mint: Mint) -> None:
    verifier = JwtVerifier(
        load_jwks(jwks), issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30, max_age_seconds=600
    )
    now = int(time.time())
    assert verifier.verify(mint(iat=now - 600, ttl=600)).subject == "demo-app"
    with pytest.raises(AuthenticationFailed, match="issued more than 600 seconds ago"):
        verifier.verify(mint(iat=now - 700, ttl=600))
    with pytest.raises(AuthenticationFailed, match="not valid yet"):
        verifier.verify(mint(iat=now + 120))


def test_a_token_living_longer_than_the_maximum_lifetime_is_refused(jwks: dict[str, Any], mint: Mint) -> None:
    verifier = JwtVerifier(load_jwks(jwks), issuer=ISSUER, audience=AUDIENCE, max_lifetime_seconds=3600)
    assert verifier.verify(mint(ttl=3600)).subject == "demo-app"
    with pytest.raises(AuthenticationFailed, match="lifetime"):
        verifier.verify(mint(ttl=3601))
    ten_years = JwtVerifier(load_jwks(jwks), issuer=ISSUER, audience=AUDIENCE)  # the defaults
    with pytest.raises(AuthenticationFailed, match="lifetime"):
        ten_years.verify(mint(ttl=10 * 365 * 86400))


def test_the_settings_bound_the_deployed_vendor(monkeypatch: pytest.MonkeyPatch, mint: Mint) -> None:
    from shared.config import Settings

    settings = Settings.from_env({"RAMFLOW_JWT_MAX_AGE": "120", "RAMFLOW_JWT_MAX_LIFETIME": "900"})
    assert (settings.jwt_max_age_seconds, settings.jwt_max_lifetime_seconds) == (120, 900)
    assert (Settings().jwt_max_age_seconds, Settings().jwt_max_lifetime_seconds) == (
        tokens.DEFAULT_MAX_AGE_SECONDS,
        tokens.DEFAULT_MAX_LIFETIME_SECONDS,
    )


def test_dev_tokens_are_acceptable_at_their_longest() -> None:
    """`ramflow dev-token --ttl` goes up to 86400 s: exactly the default maximum lifetime."""
    from local.dev import mint_dev_token

    verifier = JwtVerifier(load_jwks(DEV_JWKS), issuer=tokens.DEV_ISSUER, audience="ramflow-token-vendor")
    assert verifier.verify(mint_dev_token("demo-app", ttl=86400)).subject == "demo-app"


def test_signature_must_verify(verifier: JwtVerifier, mint: Mint) -> None:
    header, payload, _ = mint("demo-app").split(".")
    other = mint("ops-app").split(".")[2]
    with pytest.raises(AuthenticationFailed, match="signature"):
        verifier.verify(f"{header}.{payload}.{other}")


def test_a_key_outside_the_jwks_is_refused(verifier: JwtVerifier) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "demo-app", "exp": now + 60},
        stranger,
        algorithm="RS256",
        headers={"kid": "test-rsa"},
    )
    with pytest.raises(AuthenticationFailed, match="signature"):
        verifier.verify(token)


def test_alg_none_is_refused(verifier: JwtVerifier, mint: Mint) -> None:
    payload = mint("demo-app").split(".")[1]
    with pytest.raises(AuthenticationFailed, match="algorithm"):
        verifier.verify(f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.")


def test_hs256_is_refused_even_keyed_with_the_public_key(
    verifier: JwtVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The key-confusion attack: an HMAC keyed with the (public) RSA key's PEM."""
    public_pem = rsa_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = b64({"alg": "HS256", "kid": "test-rsa"})
    claims = b64({"iss": ISSUER, "aud": AUDIENCE, "sub": "demo-app", "exp": int(time.time()) + 60})
    signature = b64(hmac.new(public_pem, f"{header}.{claims}".encode(), hashlib.sha256).digest())
    with pytest.raises(AuthenticationFailed, match="algorithm"):
        verifier.verify(f"{header}.{claims}.{signature}")


def test_token_alg_must_match_the_keys_alg(verifier: JwtVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    """An ES256 token naming an RSA key's kid finds no key: algorithms are bound to keys."""
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "demo-app", "exp": int(time.time()) + 60},
        ec_key,
        algorithm="ES256",
        headers={"kid": "test-rsa"},
    )
    with pytest.raises(AuthenticationFailed, match="no trusted key"):
        verifier.verify(token)


@pytest.mark.parametrize("token", [None, "", "abc", "a.b", "a.b.c.d", "x" * 9000])
def test_malformed_tokens(verifier: JwtVerifier, token: str | None) -> None:
    with pytest.raises(AuthenticationFailed):
        verifier.verify(token)


def test_messages_never_echo_the_token(verifier: JwtVerifier, mint: Mint) -> None:
    token = mint("demo-app", aud="nope")
    with pytest.raises(AuthenticationFailed) as caught:
        verifier.verify(token)
    assert token.split(".")[1] not in str(caught.value)


def test_jwks_must_be_public_asymmetric_keys(rsa_key: rsa.RSAPrivateKey) -> None:
    private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key))
    private.update(kid="k", alg="RS256")
    with pytest.raises(ConfigError, match="private"):
        load_jwks({"keys": [private]})
    with pytest.raises(ConfigError):
        load_jwks({"keys": [{"kty": "oct", "k": b64(b"0123456789abcdef"), "alg": "HS256", "kid": "h"}]})
    with pytest.raises(ConfigError):
        load_jwks({"keys": "nope"})


def public_jwk(key: rsa.RSAPrivateKey, **fields: Any) -> dict[str, Any]:
    return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), **fields}


def test_keys_it_cannot_use_are_skipped_and_named_in_the_log(
    jwks: dict[str, Any], mint: Mint, caplog: pytest.LogCaptureFixture
) -> None:
    """An identity provider's JWKS also publishes encryption keys and other algorithms."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unusable: list[Any] = [
        public_jwk(other, kid="enc-1", alg="RSA-OAEP", use="enc"),
        public_jwk(other, kid="enc-2", use="enc"),
        public_jwk(other, kid="rs384-1", alg="RS384", use="sig"),
        {"kty": "oct", "k": b64(b"0123456789abcdef"), "alg": "HS256", "kid": "hmac-1"},
        "not a key",
    ]
    with caplog.at_level("WARNING", logger="ramflow.tokens"):
        keyset = load_jwks({"keys": [*unusable, *jwks["keys"]]})

    assert [k.key_id for k in keyset.keys] == [k["kid"] for k in jwks["keys"]]
    verifier = JwtVerifier(keyset, issuer=ISSUER, audience=AUDIENCE)
    assert verifier.verify(mint("demo-app")).subject == "demo-app"
    assert verifier.verify(mint("demo-app", alg="ES256")).subject == "demo-app"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for kid in ("enc-1", "enc-2", "rs384-1", "hmac-1", "(no kid)"):
        assert kid in logged
    assert unusable[0]["n"][:32] not in logged and unusable[3]["k"] not in logged, "no key material"


def test_an_encryption_key_never_verifies_a_token(jwks: dict[str, Any]) -> None:
    """A key published for encryption (`use: enc`) is not trusted for signatures, whatever its alg."""
    encryption = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = JwtVerifier(
        load_jwks({"keys": [*jwks["keys"], public_jwk(encryption, kid="enc-rsa", alg="RS256", use="enc")]}),
        issuer=ISSUER,
        audience=AUDIENCE,
    )
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "demo-app", "exp": int(time.time()) + 60},
        encryption,
        algorithm="RS256",
        headers={"kid": "enc-rsa"},
    )

    with pytest.raises(AuthenticationFailed, match="no trusted key"):
        verifier.verify(token)


def test_a_jwks_without_any_usable_key_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    only_encryption = {"keys": [public_jwk(rsa_key, kid="enc-1", alg="RSA-OAEP", use="enc")]}

    with pytest.raises(ConfigError, match="no usable key") as refused:
        load_jwks(only_encryption)
    assert only_encryption["keys"][0]["n"][:32] not in str(refused.value)
    with pytest.raises(ConfigError, match="no usable key"):
        load_jwks({"keys": []})


def test_the_development_issuer_and_key_are_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, jwks: dict[str, Any]
) -> None:
    """local/dev/ publishes the private half of its key: a copied dev configuration trusts anyone."""
    monkeypatch.delenv("RAMFLOW_DEV_MODE")
    dev_key, *test_keys = jwks["keys"]
    renamed = {**dev_key, "kid": "idp-2025"}

    with pytest.raises(ConfigError, match="development issuer") as raised:
        JwtVerifier(load_jwks({"keys": test_keys}), issuer=ISSUER, audience=AUDIENCE)
    assert "RAMFLOW_DEV_MODE=1" in str(raised.value)
    for keys in ([dev_key, *test_keys], [renamed, *test_keys]):
        with pytest.raises(ConfigError, match="development key") as raised:
            JwtVerifier(load_jwks({"keys": keys}), issuer="https://id.example.test", audience=AUDIENCE)
        assert dev_key["n"][:32] not in str(raised.value)
    monkeypatch.setenv("RAMFLOW_DEV_MODE", "true")  # only 1 enables it
    with pytest.raises(ConfigError, match="development key"):
        JwtVerifier(load_jwks(jwks), issuer="https://id.example.test", audience=AUDIENCE)

    JwtVerifier(load_jwks({"keys": test_keys}), issuer="https://id.example.test", audience=AUDIENCE)
    monkeypatch.setenv("RAMFLOW_DEV_MODE", "1")
    JwtVerifier(load_jwks(jwks), issuer=ISSUER, audience=AUDIENCE)


def test_the_token_vendor_refuses_the_development_entitlements_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What copying local/dev/entitlements.yaml and jwks.json into config/ would deploy."""
    monkeypatch.delenv("RAMFLOW_DEV_MODE")

    with pytest.raises(ConfigError, match="development"):
        TokenVendor(Entitlements.load(DEV_ENTITLEMENTS))


def test_the_refused_development_values_are_those_of_local_dev() -> None:
    dev = yaml.safe_load(DEV_ENTITLEMENTS.read_text())
    (key,) = json.loads(DEV_JWKS.read_text())["keys"]
    members = json.dumps({m: key[m] for m in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)

    assert dev["issuer"] == tokens.DEV_ISSUER
    assert tokens.DEV_KEY_ID == DEV_KEY_ID == key["kid"]
    assert b64(hashlib.sha256(members.encode()).digest()) == tokens.DEV_KEY_THUMBPRINT


def test_jwks_from_file(tmp_path: Any, jwks: dict[str, Any], mint: Mint) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    verifier = JwtVerifier(load_jwks(path), issuer=ISSUER, audience=AUDIENCE)
    assert verifier.verify(mint("demo-app")).subject == "demo-app"
    with pytest.raises(ConfigError):
        load_jwks(tmp_path / "missing.json")
