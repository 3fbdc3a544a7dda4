"""Settings, all from the environment (django-environ).

With nothing set this is the one-command demo: SQLite, an in-process cache and Celery tasks run eagerly.
`DATABASE_URL`, `REDIS_URL` and `EMAIL_URL` switch to the real services; `PRODUCTION=1` turns on the
hardening that `manage.py check --deploy` asks for.
"""

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

PRODUCTION = env.bool("PRODUCTION", default=False)
# Off unless asked for, in the demo too: the app and its testers see the contract's JSON errors,
# never Django's debug pages.
DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "dev-only-insecure-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY") if PRODUCTION else env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "health_check",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.headless",
    "allauth.usersessions",
    "em_agent",
    "activation",
    "schedules",
    "timeoff",
    "swaps",
    "notifications",
    "sync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, API docs) straight from gunicorn, so the image needs no separate server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Oversized, non-UTF-8 and deeply nested bodies are refused before anything reads them.
    "em_agent.middleware.RequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "em_agent.middleware.InactivityTimeoutMiddleware",
]

ROOT_URLCONF = "em_agent.urls"
WSGI_APPLICATION = "em_agent.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's SQLite: writers queue (IMMEDIATE, a busy timeout) instead of failing "database is
    # locked" when the app sends a few requests at once; WAL lets readers go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60 if PRODUCTION else 0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="em"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "em_agent.User"
# One backend: allauth's (email login, rate limits) with the session's user loaded together with
# its agent and organisation. Django's ModelBackend before it would take every email login (the
# email is the username field) and load the three rows with three queries on every request.
AUTHENTICATION_BACKENDS = ["em_agent.backends.AuthenticationBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/admin/"

# Sessions. The token the app holds is the session key; sessions live in the database with a
# cache in front, so no state stays in a web process and a deleted session is dead everywhere.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# The inactivity timeout the product requires (help text: "na 60 minuten inactiviteit"); see
# docs/sessions.md for why and how it is enforced. Organisations may override it.
SESSION_IDLE_TIMEOUT_MINUTES = env.int("SESSION_IDLE_TIMEOUT_MINUTES", default=60)
# Absolute lifetime, whatever the activity (ASVS 5.0 7.3.2).
SESSION_ABSOLUTE_LIFETIME_HOURS = env.int("SESSION_ABSOLUTE_LIFETIME_HOURS", default=12)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_LIFETIME_HOURS * 3600
# The activity stamp is written at most this often, so reads do not turn into session writes.
SESSION_ACTIVITY_WRITE_INTERVAL_SECONDS = 60

# django-allauth: headless for the app (client "app", token in X-Session-Token); its browser pages
# serve the admin login (rate limited, MFA) and the password-reset link in the email.
ACCOUNT_ADAPTER = "em_agent.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False  # a reset asked for an unknown address sends nothing
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[EM Agent] "
HEADLESS_CLIENTS = ("app",)
HEADLESS_SERVE_SPECIFICATION = True
MFA_ADAPTER = "em_agent.adapters.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_TOLERANCE = 1
MFA_TOTP_ISSUER = "EM Agent"
# Failed logins, per account and per client address (see docs/sessions.md). Password attempts are
# reserved before the check by em_agent.login_limits (the adapter); the TOTP step uses allauth's
# login_failed counter, which also reserves first, with the same numbers (key: the user; the key's
# rate first, so a refusal there does not use up the address's budget).
LOGIN_MAX_FAILURES_PER_ACCOUNT = 5
# A contact centre's agents often share one public address (NAT), as for activation codes.
LOGIN_MAX_FAILURES_PER_ADDRESS = env.int("LOGIN_MAX_FAILURES_PER_ADDRESS", default=100)
LOGIN_FAILURE_WINDOW_SECONDS = 900
# allauth's limit on login attempts per address and minute (its default, 30, would turn away a
# contact centre's shift logging in behind one address); failures are limited above.
LOGIN_MAX_PER_ADDRESS_PER_MINUTE = env.int("LOGIN_MAX_PER_ADDRESS_PER_MINUTE", default=300)
ACCOUNT_RATE_LIMITS = {
    "login": f"{LOGIN_MAX_PER_ADDRESS_PER_MINUTE}/m/ip",
    "login_failed": (
        f"{LOGIN_MAX_FAILURES_PER_ACCOUNT}/{LOGIN_FAILURE_WINDOW_SECONDS}s/key,"
        f"{LOGIN_MAX_FAILURES_PER_ADDRESS}/{LOGIN_FAILURE_WINDOW_SECONDS}s/ip"
    ),
}
USERSESSIONS_TRACK_ACTIVITY = False

# The largest body the API takes (its biggest, a swap offer to many colleagues, is a few KB) and the
# deepest nesting (the contract's bodies are two levels deep); beyond them: 413 and 400.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
API_MAX_JSON_DEPTH = 16

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["em_agent.api.authentication.SessionTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["em_agent.api.permissions.IsActiveAgent"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "em_agent.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "em_agent.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_RATES": {},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "EM Agent API",
    "DESCRIPTION": (
        "The contract between the EM Agent backend and the mobile agent app. Authenticate with the "
        "`X-Session-Token` header from the allauth headless login (`/_allauth/app/v1/auth/login`). "
        "Every error has the body `{code, detail}` (plus `fields` for a 400)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "em_agent.api.schema.merge_allauth_login",
        "em_agent.api.docs.move_links_into_responses",
        "em_agent.api.docs.forbid_nul_in_request_strings",
    ],
    "ENUM_NAME_OVERRIDES": {
        "LanguageEnum": "em_agent.models.Language.choices",
        "PlatformEnum": "notifications.models.Platform.choices",
        "WfmSystemEnum": "em_agent.models.WfmSystem.choices",
        # A request's and a cancellation's answers share these (the names they had with one).
        "TimeOffRequestOutputStatusEnum": "timeoff.models.TimeOffStatus.choices",
        "TimeOffRequestOutputKindEnum": "timeoff.models.TimeOffKind.choices",
    },
}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("nl", _("Dutch"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Outside production WhiteNoise finds files in the apps themselves, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

EMAIL_CONFIG = env.email("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# A hanging mail server must not hold a delivery batch until the task's hard time limit.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="EM Agent <no-reply@em-agent.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Push (issue: notifications). Without a credentials file a logging gateway is used and says so.
FCM_CREDENTIALS_FILE = env.str("FCM_CREDENTIALS_FILE", default="")
# Another FCM v1 send endpoint ("{project_id}" is filled in): the local fake in tests and benchmarks.
FCM_SEND_URL = env.str("FCM_SEND_URL", default="") or None
# How the requests go out: "async" (keep-alive HTTP/1.1 on asyncio, notifications/push_async.py and
# push_http1.py) or "sdk" (firebase-admin's send_each). The default is the one bench/fanout.py
# measures faster (a quarter of the sdk's worker CPU per message, over twice its rate); both are
# tested alike.
FCM_TRANSPORT = env.str("FCM_TRANSPORT", default="async")
# Push fans out to every active device of an agent: a bound keeps one account from becoming a
# broadcast list (the oldest device is dropped when a new one registers past it).
MAX_DEVICES_PER_AGENT = env.int("MAX_DEVICES_PER_AGENT", default=5)
# Attempts per delivery (push or email) before it is marked failed, with exponential backoff from
# 30 seconds to an hour between them (about 4 hours in all).
CSRF_FAILURE_VIEW = "em_agent.errors.csrf_failure"
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=8)
# A delivery handed to a task and still unclaimed this long after is handed out again by the sweeper
# (its task or the enqueue after commit was lost). Longer than a big fan-out's queue takes to drain.
NOTIFICATION_REDISPATCH_AFTER_SECONDS = env.int("NOTIFICATION_REDISPATCH_AFTER_SECONDS", default=300)
NOTIFICATION_RETENTION_DAYS = 30
DEVICE_PRUNE_AFTER_DAYS = 90

# The nightly WFM sync: the window of schedules it reads, in days around the organisation's today.
WFM_SYNC_DAYS_BACK = env.int("WFM_SYNC_DAYS_BACK", default=7)
WFM_SYNC_DAYS_AHEAD = env.int("WFM_SYNC_DAYS_AHEAD", default=42)
# A failed night is tried again after 15, 30, 60, ... minutes, at most this many times.
WFM_SYNC_RETRIES_PER_NIGHT = env.int("WFM_SYNC_RETRIES_PER_NIGHT", default=4)
WFM_SYNC_RETRY_MINUTES = env.int("WFM_SYNC_RETRY_MINUTES", default=15)
# An HTTP WFM's pages are spooled to a temporary file before the transaction that applies them.
WFM_SYNC_SPOOL_MAX_BYTES = env.int("WFM_SYNC_SPOOL_MAX_BYTES", default=512 * 1024 * 1024)
WFM_SYNC_SPOOL_DIR = env.str("WFM_SYNC_SPOOL_DIR", default=None)
# Where seed_demo writes the demo WFM's export, a directory per organisation, for the sync to load.
WFM_DEMO_EXPORT_DIR = Path(env.str("WFM_DEMO_EXPORT_DIR", default=str(BASE_DIR / "var" / "wfm-export")))

# Activation codes.
ACTIVATION_CODE_TTL_HOURS = env.int("ACTIVATION_CODE_TTL_HOURS", default=72)
ACTIVATION_MAX_FAILURES_PER_AGENT = 5
# A contact centre's agents often share one public address (NAT): high enough for a floor of new
# agents mistyping, low enough to stop a guessing run across many accounts.
ACTIVATION_MAX_FAILURES_PER_ADDRESS = env.int("ACTIVATION_MAX_FAILURES_PER_ADDRESS", default=100)
ACTIVATION_FAILURE_WINDOW_SECONDS = 3600
# Number of reverse proxies in front of the app whose X-Forwarded-For is trusted (0: use REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

# Celery. Without a broker the tasks run in-process, so the demo needs nothing else running.
# A separate Redis database for the broker is wise (the cache's may be flushed): CELERY_BROKER_URL.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Time limits stay well below the visibility timeout, so Redis never hands a running task to a
# second worker; anything longer is split into smaller tasks.
CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS = 3600
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS}
CELERY_TASK_SOFT_TIME_LIMIT = 600
CELERY_TASK_TIME_LIMIT = 900
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^health/"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
