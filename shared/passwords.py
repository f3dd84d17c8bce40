"""First console passwords that satisfy the account's password policy, from a CSPRNG."""

from __future__ import annotations

import secrets
import string

from pydantic import SecretStr

from shared.cloud.ram import PasswordPolicy

SYMBOLS = "!@#$%^&*()-_=+[]{}:,.?"
DEFAULT_LENGTH = 24
MAX_LENGTH = 32  # RAM's upper bound for a password


def generate_password(policy: PasswordPolicy, length: int = DEFAULT_LENGTH) -> SecretStr:
    """A password holding every character class the policy names, of at least its minimum length.

    Every class is always included: an account may tighten its policy between creation and
    first login, and a stronger first password costs nothing.
    """
    length = min(MAX_LENGTH, max(length, policy.minimum_length))
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits, SYMBOLS]
    chars = [secrets.choice(alphabet) for alphabet in classes]
    alphabet = "".join(classes)
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return SecretStr("".join(chars))


def satisfies(password: str, policy: PasswordPolicy) -> bool:
    checks = [
        len(password) >= policy.minimum_length,
        not policy.require_lowercase or any(c in string.ascii_lowercase for c in password),
        not policy.require_uppercase or any(c in string.ascii_uppercase for c in password),
        not policy.require_numbers or any(c in string.digits for c in password),
        not policy.require_symbols or any(not c.isalnum() for c in password),
    ]
    return all(checks)
