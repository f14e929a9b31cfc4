"""Settings for the conversion dashboard.

Everything that differs between the embedded default (SQLite, a private broker) and production
(PostgreSQL, Redis) comes from environment variables, so the same code runs both.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from conversion import localsecrets

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SIFCONVERT_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", False)
# The embedded default is SQLite under VAR_DIR; production names its database in DATABASE_URL.
EMBEDDED = not os.environ.get("DATABASE_URL")
# Keys: SECRET_KEY signs sessions and tokens; FIELD_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first,
# so keys can be rotated) encrypt credentials at rest (ZIS passwords, Canvas tokens). Production sets both;
# the embedded default makes its own on first start and keeps them in VAR_DIR, readable by its owner only
# (conversion/localsecrets.py). DEBUG runs (development) may also use those.
_secret_key = os.environ.get("DJANGO_SECRET_KEY", "")
_field_keys = [k for k in os.environ.get("FIELD_ENCRYPTION_KEYS", "").split(",") if k]
if not (_secret_key and _field_keys):
    if not (EMBEDDED or DEBUG):
        missing = [
            name
            for name, value in (("DJANGO_SECRET_KEY", _secret_key), ("FIELD_ENCRYPTION_KEYS", _field_keys))
            if not value
        ]
        raise ImproperlyConfigured(
            f"{' and '.join(missing)} must be set in production (DATABASE_URL is set and DJANGO_DEBUG is off). "
            "Make them with: python -c 'from conversion.localsecrets import new_keys; print(new_keys())'"
        )
    _local = localsecrets.load_or_create(VAR_DIR)
    _secret_key = _secret_key or _local["secret_key"]
    _field_keys = _field_keys or [_local["field_encryption_key"]]
SECRET_KEY = _secret_key
FIELD_ENCRYPTION_KEYS = _field_keys
# Before keys were generated, the embedded default derived its encryption key from this public SECRET_KEY.
# Credentials encrypted so in an existing demo database stay readable (never written with it again); the demo
# command re-encrypts them with the current key (crypto.reencrypt_stored). Never in production.
FIELD_ENCRYPTION_LEGACY_SECRETS = (
    ["dev-only-insecure-key-change-me-in-production-0123456789"]
    if EMBEDDED and not os.environ.get("FIELD_ENCRYPTION_KEYS")
    else []
)
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "csp",
    "conversion",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "conversion.authcache.AuthenticationMiddleware",  # Django's, see there
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "conversion.middleware.IdleSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "conversion.middleware.AccessRefusedMiddleware",  # rules.AccessRefused -> 403, rules.NotVisible -> 404
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: it answers a locked-out sign-in
]

ROOT_URLCONF = "conversion.urls"
WSGI_APPLICATION = "conversion.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Embedded default: one SQLite file, in WAL mode so web, worker and beat can share it. The file and its folder
# are its owner's only (SQLite gives its -wal and -shm files the database file's mode).
_sqlite_path = VAR_DIR / "sifconvert.sqlite3"
if EMBEDDED:
    localsecrets.private_file(_sqlite_path)
DATABASES = {
    "default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)
    if os.environ.get("DATABASE_URL")
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _sqlite_path,
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# ModelBackend with the per-request user lookup read through a process-local cache (conversion/authcache.py):
# a saved or deleted user is dropped from it at once in this process, within this many seconds elsewhere.
# django-axes first: it refuses a sign-in while the account or the address is locked out.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "conversion.authcache.CachedModelBackend"]
AUTH_USER_CACHE_SECONDS = int(os.environ.get("AUTH_USER_CACHE_SECONDS", "2"))
# Sign-in throttling (django-axes, failures kept in the database so every process sees them): after
# AXES_FAILURE_LIMIT failed sign-ins, the account and, separately, the address are refused for
# AXES_COOLOFF_MINUTES. Every failure is logged (logger "axes.handlers.database") and kept (admin: Access attempts).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_SENSITIVE_PARAMETERS: list[str] = []  # the log names the account and the address (never a password)
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind a reverse proxy, the number of proxies that append to X-Forwarded-For (the client is then read there).
if os.environ.get("AXES_PROXY_COUNT"):
    AXES_PROXY_COUNT = int(os.environ["AXES_PROXY_COUNT"])
    AXES_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portfolio"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# Stored in UTC; shown in Mountain time, the clock the nightly sync runs on, always with its zone.
TIME_ZONE = "America/Denver"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it; the embedded database lives beside it.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"

# One cache: Redis in production (CACHE_URL=redis://... or unix:///path/redis.sock?db=1; CACHE_KEY_PREFIX keeps
# several deployments or bench runs on one Redis apart), this process's memory (LocMem) when no Redis is given.
# It holds the portfolio's short-lived renders and unread notes. Sessions read through it only when it is
# shared: with per-process memory, a session deleted at sign-out in one gunicorn worker would stay valid in
# the other workers' memory, so without Redis sessions are read through `local` for SESSION_LOCAL_SECONDS.
# `local` is always this process's memory: the user lookup of every request (conversion/authcache.py; a User
# carries its password hash, which must not leave the process) and the sessions without Redis
# (conversion/sessions.py). The job poll measured 2.0-4.1 ms of server CPU per request with them and 4.8-5.8
# ms without (two queries more per request): they are what keeps the dashboard's p95 under 100 ms.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["CACHE_URL"],
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", ""),
    }
    if os.environ.get("CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    "local": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "local",
        "OPTIONS": {"MAX_ENTRIES": 10000},
    },
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db" if os.environ.get("CACHE_URL") else "conversion.sessions"
SESSION_LOCAL_SECONDS = int(os.environ.get("SESSION_LOCAL_SECONDS", "2"))
# The portfolio table is re-rendered at most this often per audience (all consultants, or one district
# admin), filter and page: many consultants open it, and its figures change at job and step boundaries,
# not by the second. A user's unread notes on it are as old at most.
PORTFOLIO_CACHE_SECONDS = int(os.environ.get("PORTFOLIO_CACHE_SECONDS", "2"))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; see base.html.
# A session ends after SESSION_IDLE_MINUTES without a request (conversion/middleware.py); its cookie lasts
# SESSION_MAX_HOURS from the last minute of use (never the two weeks Django would keep it by default).
SESSION_IDLE_SECONDS = int(os.environ.get("SESSION_IDLE_MINUTES", "60")) * 60
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_MAX_HOURS", "12")) * 3600
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if SESSION_COOKIE_SECURE:
    # Served over HTTPS (secure cookies): browsers keep to HTTPS, plain HTTP is redirected, and the TLS-ending
    # proxy in front says so in X-Forwarded-Proto (it must set that header itself, never pass a client's on).
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
# Content-Security-Policy (django-csp): scripts, styles, images and fetches from this site only; no inline script
# or handler (the page scripts live in static/js, htmx is told not to inject its style element, base.html).
# Style *attributes* stay allowed: the progress bars set their width in one; they cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Addresses a district's ZIS or Canvas may have (conversion/peers.py). Loopback, link-local (cloud
# metadata), private and other special ranges are refused unless listed here (comma-separated CIDRs, or
# "loopback"): the embedded default's simulators run on loopback, so it allows loopback.
PEER_ALLOWED_NETWORKS = [
    n.strip() for n in os.environ.get("PEER_ALLOWED_NETWORKS", "loopback" if EMBEDDED else "").split(",") if n.strip()
]

# Celery. The broker URL is set by the start script (a private redis-server) or by production.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None  # Progress and results live in Job rows that pages read.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # A task whose worker dies is delivered again ...
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ... and the Job row's lease decides who may run it.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
if os.environ.get("CELERY_KEY_PREFIX"):
    # Several deployments (or test runs) may share one Redis: each keeps its queues under its own prefix.
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_KEY_PREFIX"]
if CELERY_BROKER_URL.startswith("filesystem"):
    # The server-less fallback of the embedded default: messages are files under var/broker.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
CELERY_TIMEZONE = "America/Denver"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ROUTES = {
    # Stale-job re-sends, due dates and the schedules run on a worker of their own: never behind a long job.
    "conversion.scheduled.*": {"queue": "maintenance"},
    "conversion.sif.*": {"queue": "sif"},
    "conversion.canvas.*": {"queue": "canvas"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"

# Retries against Canvas: bounded, with exponential backoff from this base (seconds), capped.
# `timeout` bounds each socket operation; `deadline` a whole request (upload, every byte of the answer).
CANVAS_CLIENT_OPTIONS = {"max_retries": 5, "backoff_base": 1.0, "backoff_cap": 60.0, "timeout": 30.0, "deadline": 300.0}

# Talking to a ZIS: seconds each exchange may take in all (a trickling answer is cut off), and how often a message
# that failed in transport (refused or dropped connection, timeout, HTTP 5xx) is sent again, with a doubling delay
# (seconds) between.
ZIS_CLIENT_OPTIONS = {"timeout": 60.0, "retries": 3, "retry_delay": 0.5}

# How many jobs of the whole fleet may talk to one ZIS host (host:port) at once, and per-host exceptions
# ("zis.example.org:443=4,10.0.0.5:80=1"); a job with no free slot is offered again after about this many seconds
# (conversion/services/zis_slots.py).
ZIS_MAX_CONCURRENT_JOBS = int(os.environ.get("ZIS_MAX_CONCURRENT_JOBS", "2"))
ZIS_CONCURRENCY = os.environ.get("ZIS_CONCURRENCY", "")
ZIS_SLOT_RETRY_SECONDS = float(os.environ.get("ZIS_SLOT_RETRY_SECONDS", "15"))

# How long a running job may go without a heartbeat before another worker may take it over.
JOB_LEASE_SECONDS = int(os.environ.get("JOB_LEASE_SECONDS", "120"))
# A job whose runs keep dying (killed worker, out of memory) is claimed at most this often, then failed.
JOB_MAX_ATTEMPTS = int(os.environ.get("JOB_MAX_ATTEMPTS", "3"))
# The longest a Canvas SIS import is polled before the job gives up on it (and aborts it), wall-clock.
CANVAS_IMPORT_WAIT_SECONDS = float(os.environ.get("CANVAS_IMPORT_WAIT_SECONDS", str(4 * 3600)))
# The longest one pull may take, however its zone keeps it going (wall-clock seconds).
PULL_MAX_SECONDS = float(os.environ.get("PULL_MAX_SECONDS", str(6 * 3600)))
# A pull's snapshot left "receiving" by a job that ended is deleted after this many hours.
RECEIVING_SNAPSHOT_MAX_HOURS = float(os.environ.get("RECEIVING_SNAPSHOT_MAX_HOURS", "24"))

# E-mail (invitations and alerts): files under var/mail by default; SMTP when EMAIL_HOST is set.
# Any other backend by dotted path in EMAIL_BACKEND (tests use Django's locmem outbox).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.filebased.EmailBackend"
)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "SIF conversions <conversions@localhost>")
# Where the product is reached from outside, for links in alert e-mails.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")
PASSWORD_RESET_TIMEOUT = int(os.environ.get("INVITATION_LINK_SECONDS", str(3 * 86400)))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
