"""evalhub settings: everything comes from the environment, with safe local defaults.

DATABASE_URL      default: SQLite file under EVALHUB_DATA_DIR (WAL mode, busy timeout)
EVALHUB_DATA_DIR  default: ./var (SQLite database, model cache, adapters, uploads, secret key)
SECRET_KEY        required when DEBUG is off; with DEBUG on a local key is generated once
DEBUG             default: on ("0", "false", "no" or "off" turn it off)
ALLOWED_HOSTS     comma separated; default with DEBUG on: localhost, 127.0.0.1, [::1]
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in {"0", "false", "no", "off", ""}


DEBUG = env_flag("DEBUG", True)
DATA_DIR = Path(os.environ.get("EVALHUB_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    if key := os.environ.get("SECRET_KEY"):
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off.")
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

if hosts := os.environ.get("ALLOWED_HOSTS"):
    ALLOWED_HOSTS = [h.strip() for h in hosts.split(",") if h.strip()]
else:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"] if DEBUG else []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "trainer",
    "evalhub",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "evalhub.middleware.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "evalhub.urls"
WSGI_APPLICATION = "evalhub.wsgi.application"
ASGI_APPLICATION = "evalhub.asgi.application"

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

_SQLITE_OPTIONS = {
    # WAL lets readers work while a rater's judgment is written; IMMEDIATE takes the write lock
    # at BEGIN so concurrent writers queue on the busy timeout instead of failing mid-transaction.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
}

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'evalhub.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = _SQLITE_OPTIONS

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
MEDIA_ROOT = DATA_DIR / "uploads"

# Large dataset uploads are streamed to a temporary file, never held in memory whole.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        # "gpu" tasks (fine-tuning, generation, scoring) go to workers started with
        # `manage.py db_worker --queue-name gpu` on machines that have the hardware.
        "QUEUES": ["default", "gpu"],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    # Request bodies are JSON, and the schema says so: a generated client that is offered form,
    # multipart and JSON for one body sends a mix. Only the dataset upload takes multipart.
    "DEFAULT_PARSER_CLASSES": ["evalhub.api.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # The browsable API would turn URLs inside model outputs into live links; this one does not.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "evalhub.api.renderers.InertBrowsableAPIRenderer",
    ],
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_RATES": {"judgments": "120/min"},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "evalhub API",
    "DESCRIPTION": "Datasets, fine-tuning runs, systems, blinded studies, judgments and reports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI is served from the vendored sidecar package, never from a CDN.
    # A body's input and output are separate components (``StudyRequest``, ``Study``), so a
    # generated client never asks for read-only fields (ids, the token) on input.
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two "status" and two "kind" choice sets exist; name their enums in the schema explicitly.
    # Gradient checkpointing and packing share one set (auto, on, off): one enum for both.
    "ENUM_NAME_OVERRIDES": {
        "AutoOnOffEnum": "trainer.engine.config.PACKING",
        "StudyStatusEnum": "evalhub.models.StudyStatus",
        "RunStatusEnum": "trainer.models.RunStatus",
        "SystemKindEnum": "evalhub.models.SystemKind",
        "DatasetKindEnum": "trainer.models.DatasetKind",
        "MetricKindEnum": "trainer.models.MetricKind",
        "ChoiceEnum": "evalhub.models.Choice",
        "VerdictEnum": "evalhub.analysis.sequential.VERDICTS",
    },
}

# Where trained adapters, checkpoints and the converted base-model cache live.
EVALHUB_MODEL_CACHE = DATA_DIR / "models"
EVALHUB_RUNS_DIR = DATA_DIR / "runs"

if not DEBUG:
    SESSION_COOKIE_SECURE = env_flag("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_flag("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_flag("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
