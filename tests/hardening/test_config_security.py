"""Configuration: keys of its own for the embedded default, no start without keys in production, owner-only
files, `check --deploy` clean, DEBUG off in scripts/start, and an old demo database's credentials still readable.

Settings are read at start, so each case runs a fresh interpreter with the environment it describes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from conversion import crypto
from conversion.models import District

REPO = Path(__file__).resolve().parents[2]
OLD_PUBLIC_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
# What settings_test.py and scripts/test put into the environment; a case starts from none of it.
CLEARED = (
    "DATABASE_URL",
    "DJANGO_SECRET_KEY",
    "FIELD_ENCRYPTION_KEYS",
    "DJANGO_DEBUG",
    "PEER_ALLOWED_NETWORKS",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_SETTINGS_MODULE",
    "SIFCONVERT_VAR_DIR",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def run_python(code: str, var_dir: Path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base.update({"DJANGO_SETTINGS_MODULE": "conversion.settings", "SIFCONVERT_VAR_DIR": str(var_dir), **env})
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=base, capture_output=True, text=True, timeout=120)


SHOW_KEYS = (
    "import django, json; django.setup(); from django.conf import settings; "
    "print(json.dumps([settings.SECRET_KEY, settings.FIELD_ENCRYPTION_KEYS]))"
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_default_makes_its_own_keys_in_an_owner_only_file(tmp_path):
    var = tmp_path / "var"
    first = run_python(SHOW_KEYS, var)
    assert first.returncode == 0, first.stderr
    secret, field_keys = json.loads(first.stdout.strip().splitlines()[-1])
    assert secret != OLD_PUBLIC_KEY and len(secret) >= 50
    Fernet(field_keys[0].encode())  # a real Fernet key, not derived from the secret
    key_file = var / "secret-keys.json"
    assert mode(key_file) == 0o600 and mode(var) == 0o700
    # Kept: the next start (web, worker and beat alike) reads the same keys ...
    again = run_python(SHOW_KEYS, var)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == [secret, field_keys]
    # ... and another installation has other keys.
    other = run_python(SHOW_KEYS, tmp_path / "other")
    other_secret, other_keys = json.loads(other.stdout.strip().splitlines()[-1])
    assert other_secret != secret and other_keys != field_keys


def test_the_embedded_database_and_its_folder_are_owner_only(tmp_path):
    var = tmp_path / "var"
    code = (
        "import django, sqlite3; django.setup(); from django.db import connection; "
        "connection.ensure_connection(); connection.cursor().execute('CREATE TABLE t (x)'); "
        "print(connection.settings_dict['NAME'])"
    )
    result = run_python(code, var)
    assert result.returncode == 0, result.stderr
    database = Path(result.stdout.strip().splitlines()[-1])
    assert database.parent == var
    assert mode(var) == 0o700
    for path in var.glob("sifconvert.sqlite3*"):  # the database and its -wal / -shm files
        assert mode(path) == 0o600, path


def test_an_existing_world_readable_var_folder_is_tightened(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    (var / "sifconvert.sqlite3").touch(mode=0o644)
    assert run_python(SHOW_KEYS, var).returncode == 0
    assert mode(var) == 0o700 and mode(var / "sifconvert.sqlite3") == 0o600


def test_production_refuses_to_start_without_its_own_keys(tmp_path):
    prod = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/sifconvert", "DJANGO_DEBUG": "0"}
    result = run_python(SHOW_KEYS, tmp_path / "var", **prod)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY and FIELD_ENCRYPTION_KEYS must be set in production" in result.stderr
    only_secret = run_python(SHOW_KEYS, tmp_path / "var", **prod, DJANGO_SECRET_KEY="x" * 60)
    assert only_secret.returncode != 0 and "FIELD_ENCRYPTION_KEYS must be set" in only_secret.stderr
    assert not (tmp_path / "var" / "secret-keys.json").exists()  # never a generated key in production


def test_check_deploy_with_production_settings_reports_nothing(tmp_path):
    env = {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/sifconvert",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "k" + Fernet.generate_key().decode() + Fernet.generate_key().decode(),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_SECURE_COOKIES": "1",
        "DJANGO_ALLOWED_HOSTS": "sif.example.org",
    }
    code = (
        "import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])"
    )
    result = run_python(code, tmp_path / "var", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_scripts_start_runs_with_debug_off_unless_asked():
    script = (REPO / "scripts" / "start").read_text()
    line = next(line for line in script.splitlines() if line.startswith("export DJANGO_DEBUG="))
    for given, expected in (("", "0"), ("1", "1")):
        out = subprocess.run(
            ["bash", "-c", f'{line}; echo "$DJANGO_DEBUG"'],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], **({"DJANGO_DEBUG": given} if given else {})},
        )
        assert out.stdout.strip() == expected


@pytest.mark.django_db
def test_a_404_and_a_500_show_the_products_pages_not_debug_output(client, consultant, settings):
    assert settings.DEBUG is False
    client.force_login(consultant)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "There is no such page" in body and "URLconf" not in body and "urlpatterns" not in body
    from django.test import RequestFactory
    from django.views.defaults import server_error

    page = server_error(RequestFactory().get("/")).content.decode()
    assert "Something went wrong" in page and "Traceback" not in page


@pytest.mark.django_db
def test_credentials_of_an_old_demo_database_stay_readable_and_are_reencrypted(district, settings):
    settings.FIELD_ENCRYPTION_LEGACY_SECRETS = [OLD_PUBLIC_KEY]
    legacy = Fernet(crypto._derived_key(OLD_PUBLIC_KEY))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {District._meta.db_table} SET canvas_token = %s WHERE id = %s",
            [legacy.encrypt(b"old-demo-token").decode(), district.pk],
        )
    district.refresh_from_db()
    assert district.canvas_token == "old-demo-token"
    assert crypto.reencrypt_stored() == 1
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT canvas_token FROM {District._meta.db_table} WHERE id = %s", [district.pk])
        (raw,) = cursor.fetchone()
    assert Fernet(settings.FIELD_ENCRYPTION_KEYS[0].encode()).decrypt(raw.encode()) == b"old-demo-token"
    assert crypto.reencrypt_stored() == 0  # done once
    settings.FIELD_ENCRYPTION_LEGACY_SECRETS = []  # production never reads with the public key
    district.refresh_from_db()
    assert district.canvas_token == "old-demo-token"


@pytest.mark.django_db(transaction=True)
def test_migration_0007_keeps_the_first_2000_characters_of_older_long_reasons():
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("conversion", "0006_alerts")], [("conversion", "0007_web_security")]
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        apps = executor.loader.project_state(before).apps
        district = apps.get_model("conversion", "District").objects.create(name="Old", slug="old")
        apps.get_model("conversion", "AuditEvent").objects.create(
            district=district, actor_label="x", action="a", summary="s", reason="r" * 2_400_000
        )
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    finally:  # back to the latest, also when the test fails, so the tests that follow find their tables
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("conversion"))
    from conversion.models import AuditEvent

    assert len(AuditEvent.objects.get(district__slug="old").reason) == 2000
