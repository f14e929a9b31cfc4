"""Encryption of credentials at rest (ZIS passwords, Canvas tokens).

Fernet (from the well-kept `cryptography` package) gives authenticated encryption; MultiFernet lets
operators rotate keys: the first key encrypts, every key decrypts.
"""
from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class CredentialError(Exception):
    """A stored credential could not be decrypted (wrong or rotated-away key)."""


def _derived_key(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sifconvert-credentials", info=b"fernet")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


@functools.cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    material = [k.encode() for k in keys] or [_derived_key(secret_key)]
    return MultiFernet([Fernet(k) for k in material])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialError("a stored credential cannot be decrypted with the configured keys") from exc


def masked(secret: str) -> str:
    """What a page may show of a secret: that it is set, and its last four characters at most."""
    if not secret:
        return "not set"
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"set (…{tail})" if tail else "set"
