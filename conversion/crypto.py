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
def _fernet(keys: tuple[str, ...], legacy: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise CredentialError("no FIELD_ENCRYPTION_KEYS configured")
    # The first key encrypts; the others (older keys, then the embedded default's legacy derived key) only decrypt.
    material = [k.encode() for k in keys] + [_derived_key(secret) for secret in legacy]
    return MultiFernet([Fernet(k) for k in material])


def fernet() -> MultiFernet:
    return _fernet(
        tuple(settings.FIELD_ENCRYPTION_KEYS), tuple(getattr(settings, "FIELD_ENCRYPTION_LEGACY_SECRETS", ()))
    )


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialError("a stored credential cannot be decrypted with the configured keys") from exc


def reencrypt(token: str) -> str:
    """`token` encrypted with the current (first) key, whichever configured key it was encrypted with."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialError("a stored credential cannot be decrypted with the configured keys") from exc


def masked(secret: str) -> str:
    """What a page may show of a secret: whether it is set, never any of its characters."""
    return "set" if secret else "not set"


def primary_can_read(token: str) -> bool:
    try:
        Fernet(settings.FIELD_ENCRYPTION_KEYS[0].encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def reencrypt_stored() -> int:
    """Re-encrypt with the current key every stored credential that only an older key (or the embedded
    default's legacy derived key) can read; after a key rotation, or on an embedded default made before keys
    were generated. Returns how many values were rewritten."""
    from django.db.models import TextField
    from django.db.models.functions import Cast

    from conversion.models import Conversion, District

    rewritten = 0
    for model, field in ((District, "canvas_token"), (Conversion, "zis_password")):
        rows = model.objects.exclude(**{field: ""}).annotate(raw=Cast(field, TextField())).values_list("pk", "raw")
        for pk, raw in rows:
            if raw and not primary_can_read(raw):
                model.objects.filter(pk=pk).update(**{field: decrypt(raw)})  # saved through the field: encrypted anew
                rewritten += 1
    return rewritten
