"""The scratch PostgreSQL database the benchmarks run in: created, migrated, and dropped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"


def scratch_url(name: str, base: str | None = None) -> str:
    """The URL of database `name` on the server of `base` (DATABASE_URL when it names PostgreSQL)."""
    base = base or os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        base = DEFAULT_SERVER
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def _maintenance(url: str) -> psycopg.Connection:
    parts = urlsplit(url)
    return psycopg.connect(urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, "")), autocommit=True)


def create(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with _maintenance(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        env={**os.environ, "DATABASE_URL": url},
        check=True,
        cwd=_REPO,
    )


def drop(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with _maintenance(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
