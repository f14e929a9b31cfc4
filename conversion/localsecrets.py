"""The embedded default's own keys and private files, made on first start (imported by settings: no Django here).

The embedded default (SQLite under the var folder) must not share a secret with every other copy of the code: on
first start it generates a random SECRET_KEY and a separate Fernet key for credentials at rest, and keeps them in
VAR_DIR/secret-keys.json, which only its owner can read (0600, in a 0700 folder). Production sets both in its
environment instead (conversion/settings.py refuses to start without them).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

KEY_FILE_NAME = "secret-keys.json"


def new_keys() -> str:
    """Fresh keys as environment lines, for an operator setting up production."""
    keys = _generate()
    return f"DJANGO_SECRET_KEY={keys['secret_key']}\nFIELD_ENCRYPTION_KEYS={keys['field_encryption_key']}"


def _generate() -> dict[str, str]:
    return {"secret_key": secrets.token_urlsafe(50), "field_encryption_key": Fernet.generate_key().decode()}


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner may enter (made so, or tightened when it is ours)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file only its owner may read or write (an empty one made when missing), in a private folder."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if os.fstat(fd).st_uid == os.getuid() and os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def load_or_create(var_dir: Path) -> dict[str, str]:
    """The keys kept in var_dir, generated on first call. Several processes may start at once: the file is
    written aside and linked into place, so every one of them reads the same complete keys."""
    path = private_dir(var_dir) / KEY_FILE_NAME
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=var_dir, prefix=".keys-")  # mkstemp makes it 0600
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(_generate(), f)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process was first: use its keys
        finally:
            os.unlink(tmp)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    keys = json.loads(path.read_text())
    if not (keys.get("secret_key") and keys.get("field_encryption_key")):
        raise RuntimeError(f"{path} is incomplete: remove it to make new keys (stored credentials are then lost)")
    return keys
