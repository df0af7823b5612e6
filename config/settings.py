"""Gatehouse settings: one module, every value read from the environment with a safe default.

The embedded default (no environment at all, DEBUG on) runs on a SQLite file in ``data/``,
an in-process cache and eager Celery. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY,
ALLOWED_HOSTS and PUBLIC_BASE_URL. Every variable read here is listed in the README's configuration
tables and in ``.env.example`` (tests/test_settings_documented.py fails when one is missing).

Sections, in order: core; database; cache and Redis; Celery; sign-in and sessions; HTTP security;
static files, logging, checks; connector API and second factor; SCIM credentials and OAuth 2; SCIM
resources; audit log and SIEM streaming; SAML; deprovisioning; the Celery beat schedule (built once,
from the intervals of the sections above). Invalid values raise ImproperlyConfigured at start-up.

Over 400 lines on purpose: Django reads one settings module, and one file with every variable in it is
what an operator greps; each section is short and commented.
"""

from __future__ import annotations

import ipaddress
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

# pysaml2 imports the CFB cipher mode from its deprecated place at import time, which printed a warning on every
# command; Gatehouse never uses CFB (assertions are decrypted with AES-CBC/GCM only, saml/encryption.py).
warnings.filterwarnings("ignore", message="CFB has been moved", module="saml2.cryptography.symmetric")

env = environ.Env()


def _positive_int(name: str, default: int) -> int:
    """An integer setting that must be 1 or more."""
    value = env.int(name, default=default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive integer (got {value}).")
    return value


def _require_positive(**values: float) -> None:
    """Refuse to start when any of these already-read settings is 0 or less."""
    for name, value in values.items():
        if value <= 0:
            raise ImproperlyConfigured(f"{name} must be a positive number.")


def _require_not_negative(**values: int) -> None:
    """Refuse to start when any of these already-read settings is below 0 (0 means "off")."""
    for name, value in values.items():
        if value < 0:
            raise ImproperlyConfigured(f"{name} must be 0 or more.")


# ================================================================================================ core
BASE_DIR = Path(__file__).resolve().parent.parent
# Where the SQLite file and collected static files live.
DATA_DIR = Path(env.str("GATEHOUSE_DATA_DIR", default=str(BASE_DIR / "data")))

# Off unless asked for: a forgotten DEBUG in production leaks tracebacks and settings.
DEBUG = env.bool("DEBUG", default=False)
# Under DEBUG: Django's technical 404/500 pages instead of the product's (tracebacks are logged either way).
DEBUG_ERROR_PAGES = env.bool("DEBUG_ERROR_PAGES", default=False)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105
# A dev key is tolerated only with DEBUG on; production refuses to start without a real one.
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY or (not DEBUG and SECRET_KEY == _DEV_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY to a long random value "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or set DEBUG=true for local development."
    )
if not DEBUG and len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters when DEBUG is off.")

# Public URL of the portal (scheme://host[:port]); the base of SAML entity IDs, ACS URLs and SCIM URLs.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# Host names this portal answers to (comma separated). Default: loopback with DEBUG, else PUBLIC_BASE_URL's host.
_PUBLIC_HOST = urlsplit(PUBLIC_BASE_URL).hostname or ""
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [h for h in [_PUBLIC_HOST] if h]
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "config.apps.GatehouseConfig",
    "audit",
    "workspaces",
    "saml",
    "scim",
    # OAuth 2 for SCIM clients (/oauth/authorize/, /oauth/token/).
    "oauth2_provider",
    # The connector API's OpenAPI schema, and its Swagger UI / Redoc from local static files (no CDN).
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # TOTP second factor and recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
]

MIDDLEWARE = [
    # /metrics (and the time of every request), then /healthz and /readyz: answered before host validation, the
    # https redirect, sessions and the audit log.
    "config.metrics.MetricsMiddleware",
    "config.health.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "audit.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Right after AuthenticationMiddleware: it wraps request.user.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.security_headers.ContentSecurityPolicyMiddleware",
    # Innermost: under DEBUG, the product's 404/500 pages instead of Django's technical ones (DEBUG_ERROR_PAGES).
    "config.error_pages.ProductErrorPagesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ============================================================================================ database
# DATABASE_URL (postgres://user@host:5432/name or sqlite:///path); SQLite file by default.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'gatehouse.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Seconds a connection is kept: reconnecting on every request made PostgreSQL pages about 10x slower.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The hot-path statements (audit append, API key lookup, access decision) are server-side prepared on
# PostgreSQL (config/db.py: planning them cost more than running them). Set false behind a
# transaction-pooling proxy that cannot keep prepared statements (PgBouncer before 1.21).
# AUDIT_PREPARED_STATEMENTS is its earlier name, still read.
# Behind a connection pooler in transaction mode (PgBouncer pool_mode=transaction): consecutive statements of one
# connection may reach different server connections, so no server-side cursors (Django's iterator()) and, by
# default, no prepared statements. docs/deploy.md, "The multi-node topology".
DB_TRANSACTION_POOLING = env.bool("DB_TRANSACTION_POOLING", default=False)
if DB_TRANSACTION_POOLING:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DB_PREPARED_STATEMENTS = env.bool(
    "DB_PREPARED_STATEMENTS", default=env.bool("AUDIT_PREPARED_STATEMENTS", default=not DB_TRANSACTION_POOLING)
)

# ======================================================================================= cache & Redis
# Redis: cache, Celery broker, replay store and rate limits. Unset: in-process cache and eager Celery.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "config.cache.ReusingRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ============================================================================================== Celery
# Broker: defaults to REDIS_URL; with neither, tasks run eagerly in the web process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=not (REDIS_URL or env.str("CELERY_BROKER_URL", default=""))
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
# A task is acknowledged when done, so a killed worker's task is delivered again (tasks are idempotent).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# A publish to a dead broker must fail fast (the deprovisioning outbox keeps the job), not block the request.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Connection retries per publish.
    "max_retries": env.int("CELERY_BROKER_CONNECT_RETRIES", default=1),
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
    # Seconds to wait for the connection, and for each read or write on it.
    "socket_connect_timeout": env.float("CELERY_BROKER_CONNECT_TIMEOUT", default=2.0),
    "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=5.0),
}

# ================================================================================ sign-in & sessions
AUTH_USER_MODEL = "workspaces.User"
AUTHENTICATION_BACKENDS = ["workspaces.auth_backends.EmailBackend"]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

# Argon2 first (OWASP's recommendation); the others only verify hashes imported from elsewhere.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Password sign-in throttle: this many failures per email (4x per IP) within the window (seconds) blocks sign-in.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)
# Break-glass (an Owner's password + recovery code while SAML-only is enforced): failures per workspace and
# client address (4x per address across workspaces), refused before any password hashing.
BREAK_GLASS_FAILURE_LIMIT = env.int("BREAK_GLASS_FAILURE_LIMIT", default=5)
BREAK_GLASS_FAILURE_WINDOW = env.int("BREAK_GLASS_FAILURE_WINDOW", default=900)

# Sessions live in the database so every web node sees a revocation at once.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)  # seconds
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# ====================================================================================== HTTP security
# Origins trusted for CSRF on POST (comma separated); PUBLIC_BASE_URL is always trusted.
CSRF_TRUSTED_ORIGINS = sorted(set(env.list("CSRF_TRUSTED_ORIGINS", default=[]) + [PUBLIC_BASE_URL]))
_SECURE = PUBLIC_BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = _SECURE
CSRF_COOKIE_SECURE = _SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env.bool("BEHIND_TLS_PROXY", default=False):
    # Only when a proxy that sets X-Forwarded-Proto sits in front.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# With an https PUBLIC_BASE_URL: plain http is redirected to https and browsers are told to use https only
# (HSTS, a year, subdomains included). Behind a TLS proxy set BEHIND_TLS_PROXY too, or the redirect loops.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_SECURE)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if _SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_SECURE)
# Asking browsers to preload the domain is the operator's decision (it is slow to undo), so off by default;
# its deploy check (security.W021) is silenced below for that reason alone.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Sent on every response that has none of its own (config/security_headers.py): the portal has no inline
# script or style and loads nothing from elsewhere.
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
)
CSRF_FAILURE_VIEW = "workspaces.errors.csrf_failure"
# Trust X-Forwarded-For for the client IP recorded in the audit log (only behind a proxy you run).
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)

# ====================================================================== static files, logging, checks
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# /metrics wants "Authorization: Bearer <METRICS_TOKEN>" when set (set it in production; docs/deploy.md).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# SIEM lag: undelivered events are counted up to this many at each scrape (a scrape stays cheap).
METRICS_SIEM_COUNT_CAP = _positive_int("METRICS_SIEM_COUNT_CAP", 1_000_000)

# Seconds /readyz waits for its checks (database, Redis) in all before answering 503 (config/health.py).
READYZ_TIMEOUT = env.float("READYZ_TIMEOUT", default=2.0)
_require_positive(READYZ_TIMEOUT=READYZ_TIMEOUT)

# Log lines: "json" (one object per line with the request id; the default with DEBUG off) or "text" (development).
# Either way credentials are masked (audit/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text (got {LOG_FORMAT!r}).")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "audit.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "audit.logs.JsonFormatter"},
        "text": {
            "()": "audit.logs.MaskingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    # Root log level.
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "xmlschema": {"level": "WARNING"},
        # pysaml2 logs every NameID and attribute at INFO: keep personal data (and the time it costs) out.
        "saml2": {"level": env.str("SAML2_LOG_LEVEL", default="WARNING")},
        # oauthlib logs issued tokens and request bodies at DEBUG: never below WARNING, whatever LOG_LEVEL says.
        "oauthlib": {"level": "WARNING"},
    },
}
# Celery workers and beat log through LOGGING above (same format, same request ids) instead of their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Email uniqueness is a case-insensitive functional constraint (user_email_ci_unique), which auth.W004 cannot see.
# security.W021 (HSTS preload): see SECURE_HSTS_PRELOAD above.
SILENCED_SYSTEM_CHECKS = ["auth.W004", "security.W021"]

# ============================================================================ connector API & 2FA
# REST API under /api/v1/ (workspaces/api/): API keys are the only credential. Only the schema class is
# global: the API's views set their own authentication, renderers, parsers and error handler
# (workspaces/api/views.py), so other DRF views (SCIM) keep theirs.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gatehouse connector API",
    "DESCRIPTION": "Roster, teams, repositories and package access checks for one workspace per API key. See docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs are public (they describe no tenant data); every /api/v1/ call needs a key.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {"RoleEnum": "workspaces.roles.Role.choices",
                            "EntitlementKindEnum": "workspaces.entitlements.EntitlementKind.choices",
                            "ReviewScopeEnum": "workspaces.models.ReviewScope.choices",
                            "PrincipalTypeEnum": ["member", "team"],
                            "ResourceTypeEnum": ["workspace", "team", "repository"]},
}
# Issuer shown in authenticator apps next to the account (otpauth:// label).
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Gatehouse")
# A pending password login waits this long (seconds) for its second factor.
TWO_FACTOR_PENDING_SECONDS = env.int("TWO_FACTOR_PENDING_SECONDS", default=600)

# ================================================================= invitations and outgoing email
# How long an invitation link works (hours); a used, revoked or expired link is refused and an Owner resends it.
INVITATION_TTL_HOURS = _positive_int("INVITATION_TTL_HOURS", 72)
# How mail leaves (invitations): the console backend prints it (demo, development); set smtp in production.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# SMTP relay for the smtp backend; ignored by the console backend.
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# Seconds an SMTP connection may take before sending gives up (a stuck relay never holds a request long).
EMAIL_TIMEOUT = _positive_int("EMAIL_TIMEOUT", 10)
# The From address of invitations.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Gatehouse <no-reply@gatehouse.invalid>")

# ================================================================= SCIM credentials and OAuth 2
# django-oauth-toolkit serves /oauth/authorize/ and /oauth/token/ for SCIM clients (Okta's "OAuth 2"
# mode, Entra's client-credentials mode). Every OAuth client is bound to one workspace through a
# ScimCredential; its tokens carry the single scope ``scim:<workspace id>``.
# Named explicitly because scim.ScimCredential has a foreign key to it (DOT's model is swappable).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"


def _scim_pkce_required(client_id: str) -> bool:
    # Imported lazily: settings load before the apps do.
    from scim.oauth import pkce_required

    return pkce_required(client_id)


OAUTH2_PROVIDER = {
    # Scopes are per workspace (scim:<id>); scim.oauth knows which one each client may have.
    "SCOPES_BACKEND_CLASS": "scim.oauth.ScimScopes",
    "OAUTH2_VALIDATOR_CLASS": "scim.oauth.ScimOAuth2Validator",
    # Access tokens live an hour; Okta and Entra refresh or re-request them on their own.
    "ACCESS_TOKEN_EXPIRE_SECONDS": _positive_int("SCIM_OAUTH_ACCESS_TOKEN_SECONDS", 3600),
    # A refresh token unused for this long dies (each refresh rotates it and starts again).
    "REFRESH_TOKEN_EXPIRE_SECONDS": _positive_int("SCIM_OAUTH_REFRESH_TOKEN_SECONDS", 90 * 24 * 3600),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    # A replayed (already rotated) refresh token revokes its whole family (RFC 9700 4.14.2).
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # The Owner always sees "Accept access": no silent re-approval.
    "REQUEST_APPROVAL_PROMPT": "force",
    # Confidential clients (all SCIM clients) may skip PKCE: Okta's SCIM OAuth client does not send it.
    "PKCE_REQUIRED": _scim_pkce_required,
    # Okta's and Entra's callbacks are https; plain http only for local development.
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"] if DEBUG else ["https"],
    # Store only SHA-256 checksums of access and refresh tokens, never the tokens (RFC 9700 4.16).
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    # PKCE, when a client sends it, only with S256; access tokens never in query strings; the
    # authorization response names its issuer (RFC 9207; clients ignore parameters they do not know).
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    # Client secrets are hashed with the first PASSWORD_HASHERS entry (Argon2).
    "CLIENT_SECRET_HASHER": "default",
}
# How long a rotated SCIM credential keeps working next to its replacement (hours).
SCIM_CREDENTIAL_ROTATION_OVERLAP_HOURS = _positive_int("SCIM_CREDENTIAL_ROTATION_OVERLAP_HOURS", 24)
# Failed SCIM authentications allowed per window, per (client IP, workspace) and per key id, before 429.
SCIM_AUTH_FAILURE_LIMIT = _positive_int("SCIM_AUTH_FAILURE_LIMIT", 10)
# Failed SCIM authentications allowed per window from one client IP across all workspaces (high: Okta's and
# Entra's engines share egress IPs between all their customers).
SCIM_AUTH_FAILURE_IP_LIMIT = _positive_int("SCIM_AUTH_FAILURE_IP_LIMIT", 300)
# Length of the rate-limit window in seconds (Retry-After is at most this).
SCIM_AUTH_FAILURE_WINDOW = _positive_int("SCIM_AUTH_FAILURE_WINDOW", 300)
# Seconds a bearer/Basic SCIM credential stays cached (cleared at once on revoke, rotate, SCIM switched off;
# at most 2 s with the in-process cache, which other processes cannot clear). 0: no cache.
SCIM_CREDENTIAL_CACHE_SECONDS = env.int("SCIM_CREDENTIAL_CACHE_SECONDS", default=60)
_require_not_negative(SCIM_CREDENTIAL_CACHE_SECONDS=SCIM_CREDENTIAL_CACHE_SECONDS)
# A refresh token reused this soon after its rotation, with what that rotation returned still unused, is a client
# that lost the reply: it gets a fresh pair instead of having its family revoked (scim.oauth; 0: off).
SCIM_OAUTH_REFRESH_RETRY_SECONDS = env.int("SCIM_OAUTH_REFRESH_RETRY_SECONDS", default=60)
_require_not_negative(SCIM_OAUTH_REFRESH_RETRY_SECONDS=SCIM_OAUTH_REFRESH_RETRY_SECONDS)
# Provisioning log: newest rows kept per workspace, and the age after which rows go.
SCIM_REQUEST_LOG_KEEP = _positive_int("SCIM_REQUEST_LOG_KEEP", 1000)
SCIM_REQUEST_LOG_MAX_AGE_DAYS = _positive_int("SCIM_REQUEST_LOG_MAX_AGE_DAYS", 30)
# Rows of requests that failed authentication are kept in a budget of their own (a flood of junk never pushes
# the authenticated history out).
SCIM_REQUEST_LOG_UNAUTHENTICATED_KEEP = _positive_int("SCIM_REQUEST_LOG_UNAUTHENTICATED_KEEP", 200)
# DOT's expired tokens and used grants are deleted by beat, as `manage.py cleartokens` does (seconds).
_SCIM_CLEAR_TOKENS_EVERY = 24 * 3600

# ============================================================================================ SCIM resources
# Gatehouse serves SCIM through its own entry point (scim/protocol/router.py) and django-scim2's adapters,
# schemas and exception class; django_scim is not an installed app (it has no concrete models).
SCIM_SERVICE_PROVIDER = {
    "USER_ADAPTER": "scim.protocol.users.GatehouseSCIMUser",
    "GROUP_ADAPTER": "scim.protocol.groups.GatehouseSCIMGroup",
    "USER_MODEL_GETTER": "scim.protocol.users.membership_model",
    "GROUP_MODEL": "workspaces.models.Team",
    "SERVICE_PROVIDER_CONFIG_MODEL": "scim.schemas.GatehouseServiceProviderConfig",
    "NETLOC": PUBLIC_BASE_URL.split("://", 1)[-1],
    "SCHEME": PUBLIC_BASE_URL.split("://", 1)[0],
    # What ServiceProviderConfig advertises. No WWW_AUTHENTICATE_HEADER: the 401 challenge comes from
    # scim.auth (django-scim2's middleware, its only reader, is not used).
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A workspace SCIM token, or an OAuth 2 access token issued for SCIM.",
            "primary": True,
        },
        {"type": "httpbasic", "name": "HTTP Basic", "description": "A workspace SCIM key and secret."},
    ],
}
# Largest page a SCIM list returns (advertised as filter.maxResults in ServiceProviderConfig).
SCIM_MAX_RESULTS = env.int("SCIM_MAX_RESULTS", default=200)
# Largest SCIM request body in bytes (bigger is 413).
SCIM_MAX_BODY_BYTES = env.int("SCIM_MAX_BODY_BYTES", default=1_048_576)
# Most operations one SCIM PATCH may carry.
SCIM_MAX_PATCH_OPERATIONS = env.int("SCIM_MAX_PATCH_OPERATIONS", default=1000)
# Serve the unfiltered SCIM Users list's totalResults and page starts from its database index
# (scim/list_index.py); off: COUNT(*) and OFFSET on every list request. The index is kept up to date either way.
SCIM_LIST_INDEX = env.bool("SCIM_LIST_INDEX", default=True)
# Every how many members the list index keeps a page start (Okta and Entra page by 100 from 1, 101, ...).
SCIM_LIST_ANCHOR_EVERY = _positive_int("SCIM_LIST_ANCHOR_EVERY", 100)

# ======================================================================== outbound requests (config/outbound.py)
# Every request to an address an Owner typed (SIEM sinks, IdP metadata URLs) goes through one guarded client:
# https only, public addresses only. Plain http: a development setting. Networks listed here may be reached
# although private (an on-premises SIEM, for example "10.20.0.0/16"); cloud metadata addresses never.
OUTBOUND_ALLOW_HTTP = env.bool("OUTBOUND_ALLOW_HTTP", default=False)
OUTBOUND_ALLOWED_NETWORKS = env.list("OUTBOUND_ALLOWED_NETWORKS", default=[])
for _network in OUTBOUND_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"OUTBOUND_ALLOWED_NETWORKS: {_network!r} is not a network (example: 10.20.0.0/16)."
        ) from None

# ======================================================================== audit log & SIEM streaming
# HMAC key for retention checkpoints; empty: derived from SECRET_KEY (set it so SECRET_KEY can rotate).
AUDIT_CHECKPOINT_KEY = env.str("AUDIT_CHECKPOINT_KEY", default="")
# Key material that encrypts SIEM sink secrets at rest; empty: derived from SECRET_KEY.
AUDIT_SINK_KEY = env.str("AUDIT_SINK_KEY", default="")
# Access decisions (package.pulled/pushed/deleted/denied) change nothing; their event commits without
# waiting for the WAL flush unless this is true (see audit.record.record_decision for the trade).
AUDIT_DECISION_SYNCHRONOUS_COMMIT = env.bool("AUDIT_DECISION_SYNCHRONOUS_COMMIT", default=False)
# Events per SIEM delivery batch, request timeout (s), and the backoff ceiling (s).
AUDIT_SINK_BATCH = env.int("AUDIT_SINK_BATCH", default=500)
AUDIT_SINK_TIMEOUT = env.int("AUDIT_SINK_TIMEOUT", default=10)
AUDIT_SINK_MAX_BACKOFF = env.int("AUDIT_SINK_MAX_BACKOFF", default=600)
# How often beat looks for sinks with queued events, verifies chains, applies retention (seconds).
AUDIT_SINK_POLL_SECONDS = env.int("AUDIT_SINK_POLL_SECONDS", default=5)
AUDIT_VERIFY_EVERY_SECONDS = env.int("AUDIT_VERIFY_EVERY_SECONDS", default=3600)
AUDIT_RETENTION_EVERY_SECONDS = env.int("AUDIT_RETENTION_EVERY_SECONDS", default=6 * 3600)
_require_positive(
    AUDIT_SINK_BATCH=AUDIT_SINK_BATCH,
    AUDIT_SINK_TIMEOUT=AUDIT_SINK_TIMEOUT,
    AUDIT_SINK_POLL_SECONDS=AUDIT_SINK_POLL_SECONDS,
    AUDIT_VERIFY_EVERY_SECONDS=AUDIT_VERIFY_EVERY_SECONDS,
    AUDIT_RETENTION_EVERY_SECONDS=AUDIT_RETENTION_EVERY_SECONDS,
)
# Most events one retention purge transaction removes (the beat job repeats until done).
AUDIT_PURGE_BATCH = env.int("AUDIT_PURGE_BATCH", default=100_000)

# ================================================================================================ SAML
# The xmlsec1 program pysaml2 checks for at start-up (signatures are verified in-process by python-xmlsec).
SAML_XMLSEC1_BINARY = env.str("SAML_XMLSEC1_BINARY", default="/usr/bin/xmlsec1")
# How long an issued AuthnRequest may be answered (seconds).
SAML_AUTHN_REQUEST_TTL = env.int("SAML_AUTHN_REQUEST_TTL", default=600)
# Test SSO must have succeeded this recently (seconds) before SAML-only can be switched on.
SAML_TEST_FRESHNESS = env.int("SAML_TEST_FRESHNESS", default=24 * 3600)
# Break-glass recovery codes produced when SAML-only is switched on.
SAML_BREAK_GLASS_CODES = env.int("SAML_BREAK_GLASS_CODES", default=8)
# Key material that encrypts workspaces' SP private keys at rest; empty: derived from SECRET_KEY.
SAML_SP_KEY_ENCRYPTION_KEY = env.str("SAML_SP_KEY_ENCRYPTION_KEY", default="")
# Metadata URLs are refreshed daily by beat (a failing refresh keeps the last good metadata); expired
# AuthnRequests and replay records are purged hourly (seconds).
_SAML_METADATA_REFRESH_EVERY = 24 * 3600
_SAML_PURGE_EVERY = 3600

# ============================================================================ verified email domains
# A workspace proves an email domain with a TXT record (workspaces/domains.py, docs/saml.md "Verified domains").
# DNS servers asked, as IP addresses (comma-separated); empty: the system resolver (/etc/resolv.conf).
DOMAIN_VERIFICATION_NAMESERVERS = env.list("DOMAIN_VERIFICATION_NAMESERVERS", default=[])
for _nameserver in DOMAIN_VERIFICATION_NAMESERVERS:
    try:
        ipaddress.ip_address(_nameserver)
    except ValueError:
        raise ImproperlyConfigured(
            f"DOMAIN_VERIFICATION_NAMESERVERS: {_nameserver!r} is not an IP address (example: 1.1.1.1)."
        ) from None
# Port of those servers (53; tests run a server of their own on another port).
DOMAIN_VERIFICATION_PORT = _positive_int("DOMAIN_VERIFICATION_PORT", 53)
# Seconds one lookup may take in all (a page waits for it: keep it short).
DOMAIN_VERIFICATION_TIMEOUT = env.float("DOMAIN_VERIFICATION_TIMEOUT", default=3.0)
# Days a claim may stay unverified before it is removed (audited domain.expired).
DOMAIN_CLAIM_PENDING_DAYS = _positive_int("DOMAIN_CLAIM_PENDING_DAYS", 7)
# Seconds between two checks of a verified domain's record.
DOMAIN_RECHECK_SECONDS = _positive_int("DOMAIN_RECHECK_SECONDS", 24 * 3600)
# Consecutive checks that find no record before a verified domain loses its verification (DNS errors do not count).
DOMAIN_LOST_AFTER_FAILURES = _positive_int("DOMAIN_LOST_AFTER_FAILURES", 3)
_require_positive(DOMAIN_VERIFICATION_TIMEOUT=DOMAIN_VERIFICATION_TIMEOUT)
# Beat looks for due checks and expired claims hourly (seconds).
_DOMAIN_RECHECK_EVERY = 3600

# ====================================================================================== deprovisioning
# Seconds after which the beat sweeper re-enqueues a job that is not done (Redis down, worker died).
DEPROVISION_RETRY_AFTER = env.int("DEPROVISION_RETRY_AFTER", default=30)
# How often beat runs the sweeper (seconds).
DEPROVISION_SWEEP_INTERVAL = env.float("DEPROVISION_SWEEP_INTERVAL", default=30.0)
# Attempts per job before it is marked failed and shown to Owners.
DEPROVISION_MAX_ATTEMPTS = env.int("DEPROVISION_MAX_ATTEMPTS", default=6)
# Backoff between attempts: base seconds, doubled each attempt, capped.
DEPROVISION_RETRY_BASE = env.int("DEPROVISION_RETRY_BASE", default=2)
DEPROVISION_RETRY_MAX_DELAY = env.int("DEPROVISION_RETRY_MAX_DELAY", default=300)
# Job ids per Celery message (an enqueue costs about 0.8 ms, so chunks, not one message per member).
DEPROVISION_BATCH_SIZE = env.int("DEPROVISION_BATCH_SIZE", default=100)
# Jobs revoked per database transaction inside a batch (fewer commits; a shorter hold on audit chain locks).
DEPROVISION_TXN_SIZE = env.int("DEPROVISION_TXN_SIZE", default=25)
# Jobs the sweeper claims and publishes at a time (a sweep repeats until the due backlog is handed out).
DEPROVISION_SWEEP_LIMIT = env.int("DEPROVISION_SWEEP_LIMIT", default=5000)
# After a failed publish (broker down), new jobs wait for the sweeper for this many seconds.
DEPROVISION_PUBLISH_PAUSE = env.float("DEPROVISION_PUBLISH_PAUSE", default=5.0)
# New jobs committed within this many seconds of each other share one message, run that long after the
# first (a burst of deactivations is revoked in batches, not one message each). 0: one message per job.
# Whole seconds: the window is a cache key's expiry, and Redis expiries are whole seconds.
DEPROVISION_COALESCE_SECONDS = env.int("DEPROVISION_COALESCE_SECONDS", default=1)
_require_not_negative(DEPROVISION_COALESCE_SECONDS=DEPROVISION_COALESCE_SECONDS)
_require_positive(
    DEPROVISION_RETRY_AFTER=DEPROVISION_RETRY_AFTER,
    DEPROVISION_SWEEP_INTERVAL=DEPROVISION_SWEEP_INTERVAL,
    DEPROVISION_MAX_ATTEMPTS=DEPROVISION_MAX_ATTEMPTS,
    DEPROVISION_BATCH_SIZE=DEPROVISION_BATCH_SIZE,
)

# ============================================================================= Celery beat schedule
# Periodic jobs: the registered task each runs and how often (seconds); the intervals come from the sections above.
# Any number of beat processes may run (docs/deploy.md): each entry sends config.tasks.run_periodic(<job>),
# and the worker that receives it runs the job only when no other beat's copy already ran that slot.
PERIODIC_JOBS: dict[str, dict[str, Any]] = {
    "deprovision-sweep": {
        "task": "workspaces.tasks.sweep_deprovision_jobs",
        "every": DEPROVISION_SWEEP_INTERVAL,
        "options": {"expires": DEPROVISION_SWEEP_INTERVAL},  # a backlog of sweeps is pointless
    },
    "scim-clear-expired-oauth-tokens": {"task": "scim.tasks.clear_expired_oauth_tokens", "every": _SCIM_CLEAR_TOKENS_EVERY},
    "audit-deliver-sinks": {"task": "audit.tasks.deliver_due_audit_sinks", "every": AUDIT_SINK_POLL_SECONDS},
    "audit-verify-chains": {"task": "audit.tasks.verify_audit_chains", "every": AUDIT_VERIFY_EVERY_SECONDS},
    "audit-retention": {"task": "audit.tasks.purge_expired_audit_events", "every": AUDIT_RETENTION_EVERY_SECONDS},
    "saml-refresh-metadata": {"task": "saml.tasks.refresh_all_metadata", "every": _SAML_METADATA_REFRESH_EVERY},
    "saml-purge-expired": {"task": "saml.tasks.purge_expired_saml_state", "every": _SAML_PURGE_EVERY},
    "domain-recheck": {"task": "workspaces.tasks.recheck_domain_claims", "every": _DOMAIN_RECHECK_EVERY},
}
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    name: {
        "task": "config.tasks.run_periodic",
        "schedule": float(job["every"]),
        "args": (name,),
        "options": job.get("options", {}),
    }
    for name, job in PERIODIC_JOBS.items()
}
