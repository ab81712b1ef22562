"""LLM Gateway settings: everything from the environment, with defaults that need nothing running.

With no environment at all you get SQLite, an in-process cache and eager Celery. Set DATABASE_URL
and REDIS_URL to run on PostgreSQL, Redis and real Celery workers.
Every variable is in .env.example.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


# An empty variable means "use the default", so a copy of .env.example with blanks works as is.
def env(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


DEBUG = env_bool("DEBUG", False)
# A fixed development key keeps `make run` zero-config; production must set SECRET_KEY
# (`manage.py check --deploy` complains about this one).
SECRET_KEY = env("SECRET_KEY", "django-insecure-development-key-change-me")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "django_htmx",
    "template_partials",
    "accounts",
    "organizations",
    "llm",
    "billing",
    "analytics",
    "djstripe",
    # Database metrics through its instrumented backends (DATABASES below). Its Redis cache backend
    # needs django-redis, which the gateway does not use; cache hits are counted by the gateway.
    "django_prometheus",
    # Last: sets up what the process shares once every app is ready (gateway_project/startup.py).
    "gateway_project",
]

MIDDLEWARE = [
    # Every request gets a request id (X-Request-ID) before anything else logs.
    "analytics.request_ids.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "gateway_project.urls"
WSGI_APPLICATION = "gateway_project.wsgi.application"
ASGI_APPLICATION = "gateway_project.asgi.application"

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
                "organizations.context_processors.current_organization",
            ],
        },
    },
]

# Database: SQLite file by default, anything dj-database-url understands via DATABASE_URL, run
# through django-prometheus's instrumented backend of the same engine (database metrics).
_database = dj_database_url.config(
    env="DATABASE_URL",
    default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
    conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    # A kept connection is checked before reuse: after a database restart it is replaced.
    conn_health_checks=True,
)
_INSTRUMENTED_DB_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
DATABASES = {
    "default": {
        **_database,
        "ENGINE": _INSTRUMENTED_DB_ENGINES.get(_database["ENGINE"], _database["ENGINE"]),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis backs the cache, rate limits, quota reservations and the Celery broker when configured.
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "gw",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/dashboard/"

# django-allauth: e-mail is the login; verification optional unless the operator demands it.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_SIGNUP_FORM_CLASS = "organizations.forms.SignupForm"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_RATE_LIMITS = {"login_failed": "5/5m/ip,5/5m/key"}

# E-mail: printed to the console unless an SMTP server is configured.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "LLM Gateway <noreply@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "organizations.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "organizations.api_parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_RATES": {"login": env("GATEWAY_LOGIN_RATE", "10/min")},
    "EXCEPTION_HANDLER": "organizations.api_errors.exception_handler",
}
# The management API's logins: a short-lived JWT access token and a rotating refresh token.
# A refresh token works once: refreshing returns a new one and blacklists the old; logging out
# blacklists it too. Changing the password revokes every token of the user.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("GATEWAY_JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("GATEWAY_JWT_REFRESH_DAYS", 14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "CHECK_REVOKE_TOKEN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
# The schema covers the management API (DRF views) and the public API (plain async views,
# described in llm/api/public_openapi.yaml and merged in by the hook). Swagger UI and ReDoc are
# served from our own static files (drf-spectacular-sidecar): the docs work offline.
SPECTACULAR_SETTINGS = {
    "TITLE": "LLM Gateway API",
    "DESCRIPTION": (
        "The public API (`/v1/`, `/api/v1/`: OpenAI- and Anthropic-compatible, authenticated "
        "with an organisation API key `gw-…`) and the management API (`/api/…`: a JWT access "
        "token from `POST /api/auth/login`, a session, or for read-only usage endpoints an API "
        "key)."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "llm.api.openapi.add_public_api",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: eager (in-process) without a broker, Redis when REDIS_URL is set.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The beat schedule is at the end (it uses settings below); options some tasks share, in celery.py.

# Stripe (dj-stripe). Empty keys mean "Stripe not configured": the Free plan applies.
STRIPE_LIVE_MODE = env_bool("STRIPE_LIVE_MODE", False)
STRIPE_TEST_SECRET_KEY = env("STRIPE_TEST_SECRET_KEY")
STRIPE_LIVE_SECRET_KEY = env("STRIPE_LIVE_SECRET_KEY")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# whsec_…: the secret of the endpoint that posts to /api/billing/webhook
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
if env("STRIPE_API_HOST"):
    STRIPE_API_HOST = env("STRIPE_API_HOST")  # a local fake Stripe in development only

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Production hardening: on whenever DEBUG is off.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# The gateway's own settings.
GATEWAY_INVITATION_DAYS = env_int("GATEWAY_INVITATION_DAYS", 7)
GATEWAY_API_KEY_CACHE_SECONDS = env_int("GATEWAY_API_KEY_CACHE_SECONDS", 30)
GATEWAY_MAX_BODY_BYTES = env_int("GATEWAY_MAX_BODY_BYTES", 10 * 1024 * 1024)
# Hostile-input caps on the public API: JSON nesting, messages per request, structured schemas.
GATEWAY_MAX_JSON_DEPTH = env_int("GATEWAY_MAX_JSON_DEPTH", 64)
GATEWAY_MAX_MESSAGES = env_int("GATEWAY_MAX_MESSAGES", 2048)
GATEWAY_MAX_SCHEMA_BYTES = env_int("GATEWAY_MAX_SCHEMA_BYTES", 64 * 1024)
GATEWAY_MAX_SCHEMA_DEPTH = env_int("GATEWAY_MAX_SCHEMA_DEPTH", 32)
# Bytes one upstream answer or stream may have before it is cut off with a 502 naming the provider.
GATEWAY_MAX_UPSTREAM_BYTES = env_int("GATEWAY_MAX_UPSTREAM_BYTES", 32 * 1024 * 1024)
GATEWAY_REQUEST_DEADLINE_SECONDS = env_int("GATEWAY_REQUEST_DEADLINE_SECONDS", 120)
# After our deadline (or a hang-up) a provider may still answer and bill: how long settle waits
# for its usage before billing the prompt as an estimate.
GATEWAY_LATE_ANSWER_GRACE_SECONDS = float(env("GATEWAY_LATE_ANSWER_GRACE_SECONDS", "30"))
GATEWAY_RETRY_ATTEMPTS_PER_CANDIDATE = env_int("GATEWAY_RETRY_ATTEMPTS_PER_CANDIDATE", 2)
GATEWAY_RETRY_MAX_ATTEMPTS = env_int("GATEWAY_RETRY_MAX_ATTEMPTS", 5)
GATEWAY_RETRY_BACKOFF_SECONDS = float(env("GATEWAY_RETRY_BACKOFF_SECONDS", "0.25"))
# A candidate that sends nothing (first stream event, or a whole non-streamed answer) within
# this many seconds is left for the next one; a started stream silent this long is ended with a
# terminal error event. 0 turns either off (the request deadline still applies).
GATEWAY_FIRST_BYTE_TIMEOUT_SECONDS = float(env("GATEWAY_FIRST_BYTE_TIMEOUT_SECONDS", "60"))
GATEWAY_STREAM_IDLE_TIMEOUT_SECONDS = float(env("GATEWAY_STREAM_IDLE_TIMEOUT_SECONDS", "30"))
# Upstream connections per server process (0: no cap); an open stream holds one all along.
GATEWAY_UPSTREAM_MAX_CONNECTIONS = env_int("GATEWAY_UPSTREAM_MAX_CONNECTIONS", 10_000)
# Django refuses bodies above this before our 413 can explain; keep it above the gateway's limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = GATEWAY_MAX_BODY_BYTES + 1024

# Billing: plan cache, past-due grace, where Checkout and the Customer Portal send the user back.
GATEWAY_PLAN_CACHE_SECONDS = env_int("GATEWAY_PLAN_CACHE_SECONDS", 30)
GATEWAY_BILLING_GRACE_DAYS = env_int("GATEWAY_BILLING_GRACE_DAYS", 7)
GATEWAY_BILLING_RETURN_URL = env("GATEWAY_BILLING_RETURN_URL", "http://127.0.0.1:8000/billing/")
GATEWAY_STRIPE_METER_EVENT = env("GATEWAY_STRIPE_METER_EVENT", "gateway_tokens")
GATEWAY_ROLLUP_LAG_SECONDS = env_int("GATEWAY_ROLLUP_LAG_SECONDS", 300)  # late usage records
GATEWAY_ROLLUP_WORKERS = env_int("GATEWAY_ROLLUP_WORKERS", 2)  # connections of a catch-up

WHITENOISE_USE_FINDERS = DEBUG  # serve from app folders in development, no collectstatic

# Admission control, response cache, usage recording (billing.admission, llm.api, analytics).
GATEWAY_REDIS_TIMEOUT_SECONDS = float(env("GATEWAY_REDIS_TIMEOUT_SECONDS", "1.0"))
# Redis connections per server process; a burst beyond waits (up to the timeout) for a free one.
GATEWAY_REDIS_MAX_CONNECTIONS = env_int("GATEWAY_REDIS_MAX_CONNECTIONS", 100)
GATEWAY_RATE_LIMIT_FAIL_OPEN = env_bool("GATEWAY_RATE_LIMIT_FAIL_OPEN", True)
# With Redis away, each of this many server processes enforces 1/N of every rate limit itself.
GATEWAY_EXPECTED_PROCESSES = env_int("GATEWAY_EXPECTED_PROCESSES", 2)
GATEWAY_RESERVATION_TTL_SECONDS = env_int("GATEWAY_RESERVATION_TTL_SECONDS", 900)
GATEWAY_CACHE_ENABLED = env_bool("GATEWAY_CACHE_ENABLED", True)
GATEWAY_CACHE_TTL_SECONDS = env_int("GATEWAY_CACHE_TTL_SECONDS", 3600)
# In-process flusher of queued usage records. With Redis, Celery beat's flush-usage-records does
# it (web processes only queue: no database work beside requests); without Redis, the web
# process flushes its own embedded queue every second.
GATEWAY_USAGE_FLUSH_SECONDS = float(env("GATEWAY_USAGE_FLUSH_SECONDS", "0" if REDIS_URL else "1.0"))
GATEWAY_USAGE_FLUSH_BATCH = env_int("GATEWAY_USAGE_FLUSH_BATCH", 500)
# A queued usage entry read but not acknowledged for this long is taken over by another flusher.
GATEWAY_USAGE_CLAIM_IDLE_SECONDS = float(env("GATEWAY_USAGE_CLAIM_IDLE_SECONDS", "60"))
# Gateway processes beat every few seconds; one silent for GATEWAY_PROCESS_DEAD_SECONDS is dead and
# the sweeper turns its in-flight requests into usage rows (billing/inflight.py).
GATEWAY_PROCESS_HEARTBEAT_SECONDS = float(env("GATEWAY_PROCESS_HEARTBEAT_SECONDS", "10"))
GATEWAY_PROCESS_DEAD_SECONDS = float(env("GATEWAY_PROCESS_DEAD_SECONDS", "45"))

# --- Observability: metrics, probes, structured logs, alerts ---
# /metrics is closed (404) until METRICS_TOKEN is set; scrapers send `Authorization: Bearer <it>`.
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS")  # IPs or CIDRs; empty = any address
# Several server processes: point PROMETHEUS_MULTIPROC_DIR at an empty directory shared by them
# (prometheus_client reads the variable itself, at import). Mirrored here for visibility only.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR")
GATEWAY_METRICS_QUEUES = env_list("GATEWAY_METRICS_QUEUES", "celery")
GATEWAY_WORKER_METRICS_PORT = env_int("GATEWAY_WORKER_METRICS_PORT", 0)  # 0 = off
# Probes and the scrape answer over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# Logs: one JSON object per line (LOG_FORMAT=json, the default) or plain text for development.
LOG_FORMAT = env("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "analytics.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "analytics.logs.JsonFormatter"},
        "text": {"()": "analytics.logs.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # httpx logs every upstream call at INFO: a second line per request beside the gateway's own
    # (which names the provider, status and timings), formatted on the hot path.
    "loggers": {"httpx": {"level": "WARNING"}},
}

# Alerts: evaluated by Celery beat; e-mailed to the organisation's recipients and to staff.
GATEWAY_ALERT_INTERVAL_SECONDS = env_int("GATEWAY_ALERT_INTERVAL_SECONDS", 60)
GATEWAY_ALERT_EMAILS = env_list("GATEWAY_ALERT_EMAILS")  # besides staff users
GATEWAY_ALERT_WEBHOOK_URL = env("GATEWAY_ALERT_WEBHOOK_URL")  # generic JSON webhook, every alert
GATEWAY_ALERT_WINDOW_MINUTES = env_int("GATEWAY_ALERT_WINDOW_MINUTES", 5)
GATEWAY_ALERT_ERROR_RATE = float(env("GATEWAY_ALERT_ERROR_RATE", "0.2"))  # share of 5xx
GATEWAY_ALERT_ERROR_RATE_MIN_REQUESTS = env_int("GATEWAY_ALERT_ERROR_RATE_MIN_REQUESTS", 20)
GATEWAY_ALERT_RATE_LIMIT_SPIKE = env_int("GATEWAY_ALERT_RATE_LIMIT_SPIKE", 100)  # 429s per window
GATEWAY_ALERT_PROVIDER_DOWN_MIN_REQUESTS = env_int("GATEWAY_ALERT_PROVIDER_DOWN_MIN_REQUESTS", 5)
# Where provider states and plan usage come from (dotted paths to callables).
GATEWAY_ALERT_PROVIDER_STATES = env(
    "GATEWAY_ALERT_PROVIDER_STATES", "analytics.alert_rules.provider_states_from_usage"
)
GATEWAY_ALERT_PLAN_USAGE = env("GATEWAY_ALERT_PLAN_USAGE", "billing.usage.list_plan_usage")

# Celery beat: every scheduled job, in one table (seconds). Each is idempotent, so an overlap or a
# rerun is harmless.
CELERY_BEAT_SCHEDULE = {
    "flush-usage-records": {
        "task": "analytics.tasks.flush_usage_records",
        "schedule": float(env("GATEWAY_USAGE_BEAT_SECONDS", "5")),
    },
    "sweep-interrupted-requests": {
        "task": "billing.tasks.sweep_interrupted_requests",
        "schedule": float(env("GATEWAY_SWEEP_SECONDS", "30")),
    },
    "probe-idle-providers": {
        "task": "llm.api.tasks.probe_idle_providers",
        "schedule": float(env("GATEWAY_PROBE_IDLE_SECONDS", "60")),
    },
    "evaluate-alert-rules": {
        "task": "analytics.tasks.evaluate_alert_rules",
        "schedule": float(GATEWAY_ALERT_INTERVAL_SECONDS),
    },
    "roll-up-usage": {"task": "analytics.tasks.roll_up_usage_records", "schedule": 300.0},
    "retry-failed-webhooks": {"task": "billing.tasks.retry_failed_webhooks", "schedule": 600.0},
    "report-metered-usage": {"task": "billing.tasks.report_all_metered_usage", "schedule": 3600.0},
    "downgrade-overdue": {"task": "billing.tasks.downgrade_overdue_accounts", "schedule": 3600.0},
    "sync-invoices": {"task": "billing.tasks.sync_all_invoices", "schedule": 6 * 3600.0},
    "flush-expired-tokens": {"task": "accounts.tasks.flush_expired_tokens", "schedule": 86400.0},
}
