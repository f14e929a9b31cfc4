"""Fail early, and say how to fix it, when PostgreSQL or Redis is not answering on 127.0.0.1."""

import os
import socket
import sys
from urllib.parse import urlsplit

RESTART = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no",
}


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=3):
            return True
    except OSError:
        return False


def main() -> int:
    problems = []
    if not reachable(os.environ["DATABASE_URL"], 5432):
        problems.append("PostgreSQL")
    if not reachable(os.environ["CELERY_BROKER_URL"], 6379):
        problems.append("Redis")
    for name in problems:
        print(f"{name} is not answering. Start it with: {RESTART[name]}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
