"""Django settings. Every value that differs between deployments is read here, once, from
the environment (or an optional ``.env`` beside ``manage.py``) through django-environ."""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV", default=True):
    # Real environment variables win over the file: read_env only fills in what is unset.
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Production must set DJANGO_SECRET_KEY; `make run` writes a fresh one into .env.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "insecure-development-only"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.admin_site.SupportAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "django.contrib.staticfiles",
    # Registers ServeStatic's system checks (and silences its warning that they are off).
    "servestatic",
    "workspaces",
    "llm_keys",
    "credits",
    "ai_gateway",
    "api_tokens",
    "axes",
    "csp",
]

MIDDLEWARE = [
    # First, so that every answer, also another middleware's refusal, carries a request-id.
    "ai_gateway.request_ids.request_id_middleware",
    # Django's own middleware, passed by or run on the event loop on the token APIs
    # (config/page_middleware.py).
    "config.page_middleware.SecurityMiddleware",
    # ServeStatic, WhiteNoise's fork with native async support: under the ASGI server a
    # sync-only middleware would push every request through a thread (docs/decisions/026).
    "servestatic.middleware.ServeStaticMiddleware",
    "config.page_middleware.SessionMiddleware",
    "config.page_middleware.CommonMiddleware",
    "config.page_middleware.CsrfViewMiddleware",
    "config.page_middleware.AuthenticationMiddleware",
    "config.page_middleware.MessageMiddleware",
    "config.page_middleware.XFrameOptionsMiddleware",
    "config.page_middleware.CSPMiddleware",
    "config.security.no_store_middleware",
    # Last, as django-axes requires: it turns a lockout into the 429 answer.
    "axes.middleware.AxesMiddleware",
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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg's connection pool, per process: a request borrows a connection for each short
    # database section and gives it back when the section ends (Django returns it when it
    # closes the connection), so an open AI stream holds none (docs/decisions/026). Each web
    # process holds at most DATABASE_POOL_SIZE; a section waits up to DATABASE_POOL_TIMEOUT
    # seconds for one, then the request answers 503.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_SIZE", default=8),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
    # Pooled connections are returned, not kept per thread: Django requires CONN_MAX_AGE = 0.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "workspaces.auth.EmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# One date and number format for pages, e-mails and the admin (decision 061).
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Development serves static files straight from the app folders; production from STATIC_ROOT
# (`manage.py collectstatic`).
SERVESTATIC_USE_FINDERS = DEBUG
SERVESTATIC_AUTOREFRESH = DEBUG

# Django's database sessions, with the user as a column (workspaces.models.UserSession), so
# that deleting a user deletes the user's sessions.
SESSION_ENGINE = "workspaces.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# A refused CSRF check answers JSON under /api/ and Django's page elsewhere.
CSRF_FAILURE_VIEW = "ai_gateway.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy, production sets these (see `manage.py check --deploy`).
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("DJANGO_BEHIND_TLS_PROXY", False) else None
)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_MAX_BODY_BYTES", default=1024 * 1024)
# The AI APIs take bodies up to Anthropic's own limit for a Messages request (32 MB: images
# and PDFs travel inline as base64); the forms keep Django's limit above.
AI_REQUEST_MAX_BODY_BYTES = env.int("AI_REQUEST_MAX_BODY_BYTES", default=32 * 1024 * 1024)
# Structural limits of an AI request's JSON, checked before it is parsed (elements) and after
# (depth): a long conversation has tens of thousands of values, a tool schema a dozen levels.
AI_REQUEST_MAX_JSON_ELEMENTS = env.int("AI_REQUEST_MAX_JSON_ELEMENTS", default=500_000)
AI_REQUEST_MAX_JSON_DEPTH = env.int("AI_REQUEST_MAX_JSON_DEPTH", default=128)
# Limits of the Anthropic-compatible API per workspace API token and per workspace, on every
# endpoint (0: none). Shared by all worker processes when CACHE_URL is Redis; per process
# with the default local-memory cache. Claude Code runs sub-agents in parallel.
AI_API_TOKEN_REQUESTS_PER_MINUTE = env.int("AI_API_TOKEN_REQUESTS_PER_MINUTE", default=600)
AI_API_WORKSPACE_REQUESTS_PER_MINUTE = env.int("AI_API_WORKSPACE_REQUESTS_PER_MINUTE", default=1200)
AI_API_TOKEN_MAX_CONCURRENT_REQUESTS = env.int("AI_API_TOKEN_MAX_CONCURRENT_REQUESTS", default=32)
AI_API_WORKSPACE_MAX_CONCURRENT_REQUESTS = env.int(
    "AI_API_WORKSPACE_MAX_CONCURRENT_REQUESTS", default=64
)

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="byok@localhost")
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

# --- BYOK -----------------------------------------------------------------------------------
# The key ring for stored provider keys: "id:base64key,id:base64key", primary first.
# Never derived from SECRET_KEY, so rotating SECRET_KEY leaves stored keys readable.
LLM_KEY_ENCRYPTION_KEYS = env.str("LLM_KEY_ENCRYPTION_KEYS", default="")
# Empty means the SDK's default (Anthropic's public API).
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="") or None
PLATFORM_ANTHROPIC_API_KEY = env.str("PLATFORM_ANTHROPIC_API_KEY", default="")
# OpenAI and Google Gemini (§18): empty base URL = the provider's public API; a provider
# without a platform key is BYOK-only.
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
PLATFORM_OPENAI_API_KEY = env.str("PLATFORM_OPENAI_API_KEY", default="")
GEMINI_BASE_URL = env.str("GEMINI_BASE_URL", default="") or None
PLATFORM_GEMINI_API_KEY = env.str("PLATFORM_GEMINI_API_KEY", default="")
LLM_KEY_CHECK_TIMEOUT_SECONDS = env.float("LLM_KEY_CHECK_TIMEOUT_SECONDS", default=10.0)
LLM_KEY_CHECK_INTERVAL_MINUTES = env.int("LLM_KEY_CHECK_INTERVAL_MINUTES", default=360)
LLM_KEY_CHECK_RATE_PER_MINUTE = env.int("LLM_KEY_CHECK_RATE_PER_MINUTE", default=600)
AI_REQUEST_TIMEOUT_SECONDS = env.float("AI_REQUEST_TIMEOUT_SECONDS", default=600.0)
# Connections to the provider per web process (one shared pool for every workspace); open
# streams hold one each, so a process streams at most this many answers at once.
AI_HTTP_POOL_SIZE = env.int("AI_HTTP_POOL_SIZE", default=1000)
AI_CREDITS_MONTHLY_ALLOWANCE = env.int("AI_CREDITS_MONTHLY_ALLOWANCE", default=100_000)
# Admins are e-mailed once when the balance falls below this percentage of the allowance.
AI_CREDITS_LOW_BALANCE_PERCENT = env.int("AI_CREDITS_LOW_BALANCE_PERCENT", default=10)
# The lease of a credit reservation (contract): the serving process renews it three times per
# lease; one not renewed for this long belongs to a process that died, and the sweep charges
# it its whole reservation (decisions 100, 107).
AI_HOLD_MAX_AGE_SECONDS = env.float("AI_HOLD_MAX_AGE_SECONDS", default=300.0)
# Called by the credits sweep, in the transaction that charges a reservation whose process
# died, to write the request's one usage row (credits imports nothing of the gateway).
CREDITS_EXPIRED_RESERVATION_RECORDER = "ai_gateway.services.ai_request_record_process_died"
# The longest one AI request may run, streams included (contract); then it is cut and charged.
AI_STREAM_MAX_SECONDS = env.float("AI_STREAM_MAX_SECONDS", default=3600.0)
# A client that reads nothing of its stream for this long is taken as gone (decision 103).
AI_STREAM_WRITE_TIMEOUT_SECONDS = env.float("AI_STREAM_WRITE_TIMEOUT_SECONDS", default=60.0)
# Output tokens a stream reserves at its start, beyond its input; it extends as it streams.
AI_FIRST_OUTPUT_TOKENS = env.int("AI_FIRST_OUTPUT_TOKENS", default=2048)
# Credit-paid requests of one workspace in progress at once (contract; 429 above it).
AI_CREDITS_MAX_CONCURRENT_REQUESTS = env.int("AI_CREDITS_MAX_CONCURRENT_REQUESTS", default=16)


# --- AI credits: price table ----------------------------------------------------------------
# 1 credit = US$0.0001, so US$1 per million tokens = 10_000 credits per million tokens.
# Each price is in credits per million tokens: input, output, cache read, cache write (the
# 5-minute write price; the 1-hour write, cache_write_1h, is 2 x input), and the model's
# largest max_tokens; then what is not tokens: web_search (credits per search), web_fetch
# (per fetch), fast_percent (fast mode's rates as a percentage of the standard ones; absent:
# the model has no fast mode sold for credits) and us_inference_percent (inference_geo "us";
# absent: not offered). Sources and choices: docs/decisions/010 and 110. A model missing here
# is refused on the credits path. AI_MODEL_PRICES_OVERRIDES (JSON: {"model": {...}})
# replaces or adds rows of the version in force now.
#
# The table is versioned (decision 110): AI_MODEL_PRICE_VERSIONS lists every version with the
# moment (UTC) it took effect, oldest first, and a version is never edited once in force; a
# price change is a new version at the end. AI_MODEL_PRICES is the newest version.
def _price(
    input: int, output: int, cache_read: int, cache_write: int, max_output_tokens: int, **extra
) -> dict:
    return dict(
        input=input,
        output=output,
        cache_read=cache_read,
        cache_write=cache_write,
        max_output_tokens=max_output_tokens,
        # Web search: US$10 per 1,000 searches = 100 credits a search; web fetch: no fee
        # beyond its tokens (platform.claude.com/docs/en/about-claude/pricing).
        **{"cache_write_1h": 2 * input, "web_search": 100, "web_fetch": 0, **extra},
    )


# US-only inference (inference_geo "us") bills 1.1 x the standard rates on Opus 4.6, Sonnet
# 4.6 and later models; earlier models refuse the parameter (build-with-claude/data-residency;
# support.claude.com "Enable US-only inference": "billed at 1.1x standard API rates").
_US = {"us_inference_percent": 110}
# Fast mode (speed "fast", beta fast-mode-2026-02-01) bills 6 x the standard rates on Opus
# 4.6 and 4.7: $30 / $150 per MTok against $5 / $25 (build-with-claude/fast-mode).
_FAST_6X = {"fast_percent": 600}
_FABLE_5_2 = _price(80_000, 400_000, 2_000, 100_000, 128_000, **_US)
_FABLE_5_1 = _price(100_000, 500_000, 2_500, 125_000, 128_000, **_US)
_FABLE_5 = _price(100_000, 500_000, 10_000, 125_000, 128_000, **_US)
_OPUS_5_5 = _price(40_000, 200_000, 2_000, 50_000, 128_000, **_US)
_OPUS_5 = _price(50_000, 250_000, 5_000, 62_500, 128_000, **_US)
_OPUS_4_7 = _price(50_000, 250_000, 5_000, 62_500, 128_000, **_US, **_FAST_6X)
_OPUS_4_5 = _price(50_000, 250_000, 5_000, 62_500, 64_000)
_OPUS_4_1 = _price(150_000, 750_000, 15_000, 187_500, 32_000)
_SONNET_5_5 = _price(20_000, 100_000, 2_000, 25_000, 128_000, **_US)
_SONNET_5 = _price(30_000, 150_000, 3_000, 37_500, 128_000, **_US)
_SONNET_4_6 = _price(30_000, 150_000, 3_000, 37_500, 128_000, **_US)
# Sonnet 4.5 with the 1M-token context (beta context-1m-2025-08-07) bills the whole request
# at $6 / $22.50 per MTok once the prompt passes 200k tokens (about-claude/pricing, "Long
# context pricing"); Opus 4.6, Sonnet 4.6 and later bill their full window at the base rates.
_SONNET_4_5 = _price(
    30_000,
    150_000,
    3_000,
    37_500,
    64_000,
    long_context=dict(
        above_input_tokens=200_000,
        input=60_000,
        output=225_000,
        cache_read=6_000,
        cache_write=75_000,
        cache_write_1h=120_000,
    ),
)
# Haiku 5.5 is billed at a higher rate once the prompt passes 100k tokens.
_HAIKU_5_5 = _price(
    1_000,
    5_000,
    100,
    1_250,
    128_000,
    long_context=dict(
        above_input_tokens=100_000,
        input=5_000,
        output=25_000,
        cache_read=500,
        cache_write=6_250,
        cache_write_1h=10_000,
    ),
    **_US,
)
_HAIKU_4_5 = _price(10_000, 50_000, 1_000, 12_500, 64_000)

# OpenAI and Gemini (decision 148), from the providers' pricing pages as read on
# 4 December 2026: https://platform.openai.com/docs/pricing and
# https://ai.google.dev/gemini-api/docs/pricing (standard tier, text). Their prompt caching
# is implicit: no cache write is billed, so a write is priced as plain input (also the 1-hour
# one), and reasoning tokens are output. Embeddings bill input only (they produce no output
# tokens; the output rate, which the table requires, is never applied).
_OPENAI_GPT_5_MINI = _price(2_500, 20_000, 250, 2_500, 128_000, cache_write_1h=2_500)
_OPENAI_TEXT_EMBEDDING_3_SMALL = _price(200, 200, 200, 200, 1, cache_write_1h=200)
_GEMINI_2_5_FLASH = _price(3_000, 25_000, 300, 3_000, 65_536, cache_write_1h=3_000)
_GEMINI_EMBEDDING_001 = _price(1_500, 1_500, 1_500, 1_500, 1, cache_write_1h=1_500)

_ANTHROPIC_PRICES_2026_11 = {
    "claude-fable-5-2": _FABLE_5_2,
    "claude-mythos-5-2": _FABLE_5_2,
    "claude-fable-5-1": _FABLE_5_1,
    "claude-mythos-5-1": _FABLE_5_1,
    "claude-fable-5": _FABLE_5,
    "claude-mythos-5": _FABLE_5,
    "claude-opus-5-5": _OPUS_5_5,
    "claude-opus-5": _OPUS_5,
    "claude-opus-4-8": _OPUS_5,
    "claude-opus-4-7": _OPUS_4_7,
    "claude-opus-4-6": _OPUS_4_7,
    "claude-opus-4-5": _OPUS_4_5,
    "claude-opus-4-5-20251101": _OPUS_4_5,
    "claude-opus-4-1": _OPUS_4_1,
    "claude-sonnet-5-5": _SONNET_5_5,
    "claude-sonnet-5": _SONNET_5,
    "claude-sonnet-4-6": _SONNET_4_6,
    "claude-sonnet-4-5": _SONNET_4_5,
    "claude-sonnet-4-5-20250929": _SONNET_4_5,
    "claude-haiku-5-5": _HAIKU_5_5,
    "claude-haiku-4-5": _HAIKU_4_5,
    "claude-haiku-4-5-20251001": _HAIKU_4_5,
}

AI_MODEL_PRICE_VERSIONS = [
    {
        # The list prices as read on 2 December 2026 (decisions 010 and 110).
        "effective_from": "2026-11-01T00:00:00+00:00",
        "prices": _ANTHROPIC_PRICES_2026_11,
    },
    {
        # OpenAI and Gemini join the table (decision 148); Anthropic's rows unchanged.
        "effective_from": "2026-12-04T00:00:00+00:00",
        "prices": {
            **_ANTHROPIC_PRICES_2026_11,
            "gpt-5-mini": _OPENAI_GPT_5_MINI,
            "text-embedding-3-small": _OPENAI_TEXT_EMBEDDING_3_SMALL,
            "gemini-2.5-flash": _GEMINI_2_5_FLASH,
            "gemini-embedding-001": _GEMINI_EMBEDDING_001,
        },
    },
]
AI_MODEL_PRICES = {
    **AI_MODEL_PRICE_VERSIONS[-1]["prices"],
    **env.json("AI_MODEL_PRICES_OVERRIDES", default={}),
}

# --- Celery ---------------------------------------------------------------------------------
# Production uses Redis. Without CELERY_BROKER_URL, `make run` uses a filesystem transport
# so a worker and beat run beside the web server with nothing else installed.
# "localhost" names no server (the transport uses folders); without it Kombu warns "No
# hostname was supplied" at every start.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Kombu's filesystem transport, with each message renamed into place whole
    # (config/dev_broker.py, decision 131).
    CELERY_BROKER_TRANSPORT = "config.dev_broker:Transport"
    _broker_dir = BASE_DIR / "var" / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        data_folder_in=str(_broker_dir),
        data_folder_out=str(_broker_dir),
        control_folder=str(_broker_dir / "control"),
    )
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Kombu's Redis transport with one Redis client per channel instead of one per command
    # (config/broker.py, decision 133): a third less CPU per broker message.
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
# The cache holds the API's rate and concurrency counters (ai_gateway/limits.py): Redis
# shares them across worker processes and machines. Without CACHE_URL it is the broker's
# Redis when there is one (production), else each process's own memory (`make run`, tests;
# decision 126). `?key_prefix=` in the URL namespaces the keys (Django reads KEY_PREFIX).
CACHES = {
    "default": env.cache(
        "CACHE_URL",
        default=CELERY_BROKER_URL
        if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
        else "locmemcache://",
    )
}
if "key_prefix" in CACHES["default"]:
    CACHES["default"]["KEY_PREFIX"] = CACHES["default"].pop("key_prefix")
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A cache that does not answer must not hold up a request for the OS's TCP timeout:
    # after a second the limits let the request through uncounted (decision 126). Django
    # passes OPTIONS to redis-py's connection pool.
    CACHES["default"].setdefault("OPTIONS", {})
    CACHES["default"]["OPTIONS"].setdefault("socket_connect_timeout", 1)
    CACHES["default"]["OPTIONS"].setdefault("socket_timeout", 1)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Each worker holds up to 4 x concurrency messages, so a pool process that finishes a check
# gets the next one without waiting on a broker round trip (a 2,000-key sweep, back to back
# with 1: 29.2 s -> 27.4 s; see docs/decisions/034). Held messages stay unacknowledged
# (acks-late): a lost worker's come back after the visibility timeout, as they did with 1.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
CELERY_TIMEZONE = "UTC"
# Celery's Django fixup closes the database connection after every this many tasks (by
# default: after every task). Set beyond reach, so connections follow CONN_MAX_AGE and
# CONN_HEALTH_CHECKS as in a web request (config/celery.py closes old ones around each task).
CELERY_DB_REUSE_MAX = 1_000_000_000
# Bounded concurrency: each worker runs at most this many tasks (checks) at once; the
# provider-wide rate limit below holds however many workers run.
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=4)
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "var" / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Every LLM_KEY_CHECK_INTERVAL_MINUTES counted from beat's start; with the default 360
    # that is cron "0 */6 * * *" (four sweeps a day), shifted to when beat started.
    "llm-keys-check-all": {
        "task": "llm_keys.tasks.llm_keys_check_all",
        "schedule": timedelta(minutes=LLM_KEY_CHECK_INTERVAL_MINUTES),
    },
    # cron "5 0 * * *": daily at 00:05 UTC. The grant is idempotent per workspace and month,
    # so the first run of a month grants and a day missed while beat was down is caught up.
    "credits-monthly-allowance": {
        "task": "credits.tasks.credits_monthly_allowance_grant",
        "schedule": crontab(minute="5", hour="0"),
    },
    # Every 5 minutes: charge reservations not renewed for AI_HOLD_MAX_AGE_SECONDS (a dead
    # process's) their whole hold (docs/decisions/107).
    "credits-release-stale-holds": {
        "task": "credits.tasks.credits_release_stale_holds",
        "schedule": timedelta(minutes=5),
    },
    # cron "15 0 * * *": daily at 00:15 UTC, sum the closed days of AI requests for the
    # usage page (docs/decisions/079); days missed while beat was down are caught up.
    "ai-usage-days-build": {
        "task": "ai_gateway.tasks.ai_usage_days_build",
        "schedule": crontab(minute="15", hour="0"),
    },
    # cron "35 0 * * *": daily at 00:35 UTC, Django's clearsessions for expired sessions.
    "sessions-clear-expired": {
        "task": "workspaces.tasks.sessions_clear_expired",
        "schedule": crontab(minute="35", hour="0"),
    },
}
# Shared by every worker: Redis when the broker is Redis, else a flock-guarded file under
# var/ (development: all processes on one machine). See llm_keys/ratelimit.py.
LLM_KEY_CHECK_RATE_LIMIT_URL = env.str(
    "LLM_KEY_CHECK_RATE_LIMIT_URL",
    default=CELERY_BROKER_URL
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else f"file://{BASE_DIR / 'var' / 'ratelimit'}",
)
# Transient check failures (provider unreachable, 5xx, 529) are retried with exponential
# backoff and jitter, capped below the visibility timeout: a Redis message waiting longer
# than that for its countdown would be handed to a second worker.
LLM_KEY_CHECK_MAX_RETRIES = env.int("LLM_KEY_CHECK_MAX_RETRIES", default=5)
# A key saved while the provider could not be reached is checked again this soon (then with
# the retries' growing pauses), not at the next sweep hours later; 0 turns it off.
LLM_KEY_RECHECK_UNVERIFIED_AFTER_SECONDS = env.float(
    "LLM_KEY_RECHECK_UNVERIFIED_AFTER_SECONDS", default=60
)
LLM_KEY_CHECK_RETRY_BACKOFF_SECONDS = env.float("LLM_KEY_CHECK_RETRY_BACKOFF_SECONDS", default=30)
LLM_KEY_CHECK_RETRY_BACKOFF_MAX_SECONDS = env.float(
    "LLM_KEY_CHECK_RETRY_BACKOFF_MAX_SECONDS", default=CELERY_BROKER_VISIBILITY_TIMEOUT / 4
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_keys": {"()": "llm_keys.logging.RedactKeysFilter"}},
    "formatters": {
        "plain": {
            "()": "llm_keys.logging.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_keys"],
        },
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["redact_keys"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.request": {
            "handlers": ["console", "mail_admins"],
            "level": "ERROR",
            "propagate": False,
        },
        # Prompts, answers and request bodies are customer data: never logged, whatever
        # LOG_LEVEL says (the redaction filter also drops these loggers' DEBUG records).
        **{
            name: {"level": "INFO"}
            for name in (
                "anthropic",
                "openai",
                "google_genai",
                "httpx",
                "httpx2",
                "httpcore",
                "httpcore2",
            )
        },
        # django-axes says "BEGIN" and every successful login at INFO; lockouts are WARNING.
        "axes": {"level": "WARNING"},
    },
}
DEFAULT_EXCEPTION_REPORTER_FILTER = "llm_keys.reporting.KeyRedactingExceptionReporterFilter"
ADMINS = [("Operators", a) for a in env.list("DJANGO_ADMINS_EMAILS", default=[])]

# --- Hardening (issue 14; docs/decisions/050-059) --------------------------------------------
# The Django error page and the admins' error e-mail: keys and URL passwords redacted.
DEFAULT_EXCEPTION_REPORTER = "llm_keys.reporting.KeyRedactingExceptionReporter"

# Login throttling (django-axes), per account and per client, on /login/ and /admin/login/.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_FAILURE_WINDOW_MINUTES = env.int("LOGIN_FAILURE_WINDOW_MINUTES", default=15)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_FAILURE_WINDOW_MINUTES)
# Two separate counts: one account from any client, one client against any account.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "workspaces.lockout.login_username"
AXES_CLIENT_IP_CALLABLE = "workspaces.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "workspaces.lockout.lockout_response"
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True

# Content-Security-Policy (django-csp 4): everything from this origin, nothing inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# HSTS is on by default behind a TLS proxy (a year); DJANGO_HSTS_SECONDS=0 turns it off.
if SECURE_PROXY_SSL_HEADER:
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=365 * 24 * 3600)
