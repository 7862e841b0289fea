"""Password hashing (argon2id) and the policy a new password must meet."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256
_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so both answers take as long."""
    return _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    text = (Path(__file__).parent / "common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def policy_error(password: str, email: str) -> str | None:
    """Why `password` may not be used by the account `email`, or None when it may."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    lowered = password.lower()
    email = email.lower()
    local = email.split("@", 1)[0]
    if email in lowered or (len(local) >= 4 and local in lowered):
        return "The password must not contain your email address."
    if lowered in _common_passwords() or len(set(lowered)) < 4:
        return "That password is too common; choose one that is harder to guess."
    return None


def temporary_password() -> str:
    """A password to hand over once; the user must replace it at the next sign-in."""
    return secrets.token_urlsafe(12)
