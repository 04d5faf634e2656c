"""Lastmile settings: one module, driven by the environment.

Two modes, chosen by ``LASTMILE_ENV``:

* ``development`` (default): the embedded default. SQLite in ``var/``, the
  in-memory channel layer and an in-process task worker. Zero services.
* ``production``: every setting that matters must come from the environment.
  A missing or malformed value stops start-up with a message naming the
  variable, because a half-configured production process is worse than none.

``DATABASE_URL`` and ``REDIS_URL`` may also be set in development (CI does
this to run the suite against PostgreSQL and Redis).
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

LASTMILE_ENV = env.str("LASTMILE_ENV", default="development")
if LASTMILE_ENV not in ("development", "production"):
    raise ImproperlyConfigured(
        f"LASTMILE_ENV must be 'development' or 'production', not {LASTMILE_ENV!r}."
    )
PRODUCTION = LASTMILE_ENV == "production"


def _required(name: str) -> str:
    value = env.str(name, default="").strip()
    if not value:
        raise ImproperlyConfigured(
            f"{name} is required when LASTMILE_ENV=production (see docs/deploy.md)."
        )
    return value


# --- core -------------------------------------------------------------------

if PRODUCTION:
    SECRET_KEY = _required("SECRET_KEY")
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY must be at least 50 characters with at least 5 distinct ones; "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    DEBUG = env.bool("DEBUG", default=False)
    ALLOWED_HOSTS = [h.strip() for h in _required("ALLOWED_HOSTS").split(",") if h.strip()]
    if "*" in ALLOWED_HOSTS:
        # The WebSocket origin check relies on ALLOWED_HOSTS; a wildcard disables it.
        raise ImproperlyConfigured("ALLOWED_HOSTS must list real host names; '*' is not allowed.")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-lastmile-do-not-use-in-production")
    DEBUG = env.bool("DEBUG", default=True)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_tasks_db",
    "apps.common",
    "apps.accounts",
    "apps.events",
    "apps.dispatch",
    "apps.planning",
    "apps.pod",
    "apps.tracking",
    "apps.eta",
    "apps.notifications",
    "apps.console",
    "apps.realtime",
    "apps.integrations",
    "apps.reports",
]

MIDDLEWARE = [
    "apps.common.observability.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.common.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if PRODUCTION:
    # Daphne's runserver serves static files in development; production uses WhiteNoise
    # (compressed, cache-forever hashed names) behind the load balancer.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
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

# --- database ---------------------------------------------------------------

if PRODUCTION:
    _database_url = _required("DATABASE_URL")
else:
    _database_url = env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'lastmile.sqlite3'}")

_KNOWN_DB_SCHEMES = ("postgres", "postgresql", "pgsql", "sqlite")
_scheme = urlparse(_database_url).scheme
if _scheme not in _KNOWN_DB_SCHEMES:
    # django-environ would silently pass an unknown scheme through as an engine name.
    raise ImproperlyConfigured(
        f"DATABASE_URL has an unknown scheme {_scheme!r}; use postgres://user@host:5432/name or sqlite:///path."
    )
try:
    _db = environ.Env.db_url_config(_database_url)
except Exception as exc:  # django-environ raises several types for bad URLs
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from exc
if PRODUCTION and _db["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production (postgres://...).")

if _db["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # IMMEDIATE transactions take the write lock up front, so two writers queue on
    # busy_timeout instead of one failing with "database is locked" mid-transaction.
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
    }
    # A file-based test database lets a live server in another thread or process share it.
    # LASTMILE_TEST_DB lets parallel test runs on one machine keep their own file.
    _db["TEST"] = {"NAME": env.str("LASTMILE_TEST_DB", default=str(VAR_DIR / "test_db.sqlite3"))}
elif (_pool_size := env.int("DB_POOL_MAX_SIZE", default=20)) > 0:
    # Under ASGI each request's synchronous code runs on a thread of its own, and a
    # persistent connection per thread (CONN_MAX_AGE) outlives it: bench/load.py saw
    # four processes hold 86 connections and PostgreSQL refuse more. Django's answer for
    # ASGI is a pool per process, bounded and shared by its threads; the check drops a
    # connection that died with a database restart before a request gets it.
    from psycopg_pool import ConnectionPool

    _db["OPTIONS"] = {"pool": {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2), "max_size": _pool_size,
        "timeout": env.float("DB_POOL_TIMEOUT_S", default=10.0), "check": ConnectionPool.check_connection,
    }}
    _db["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django must hand them back after each request
else:
    _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
_db["ATOMIC_REQUESTS"] = False
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- travel times -----------------------------------------------------------

# An OSRM server's base URL (http://host:5000) for road-network travel times; empty:
# straight-line distance x road factor (apps/dispatch/optimization/travel.py).
OSRM_URL = env.str("OSRM_URL", default="")
if OSRM_URL and urlparse(OSRM_URL).scheme not in ("http", "https"):
    raise ImproperlyConfigured(f"OSRM_URL must look like http://host:5000, not {OSRM_URL!r}.")

# --- channel layer ----------------------------------------------------------

REDIS_URL = _required("REDIS_URL") if PRODUCTION else env.str("REDIS_URL", default="")
if REDIS_URL:
    _redis = urlparse(REDIS_URL)
    if _redis.scheme not in ("redis", "rediss") or not _redis.hostname:
        raise ImproperlyConfigured(
            f"REDIS_URL must look like redis://host:6379/0, not {REDIS_URL!r}."
        )
    # Which channels-redis layer: Pub/Sub by default, chosen by measurement (docs/performance.md,
    # "Live fan-out": a lower tail at every size, and no pushes shed by per-channel queues);
    # the core layer stays selectable so bench/realtime.py can measure both.
    CHANNEL_LAYER_BACKEND = env.str("CHANNEL_LAYER_BACKEND", default="channels_redis.pubsub.RedisPubSubChannelLayer")
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    # After a Redis restart every pooled connection is dead; without a health check and
    # a retry, the first command on each fails and takes a WebSocket handshake with it.
    _redis_host = {
        "address": REDIS_URL,
        "health_check_interval": 5,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, ConnectionError, TimeoutError],
    }
    # High availability: with Sentinel, the channel layer asks the sentinels for the
    # current master (and again after a failover) instead of using REDIS_URL's host.
    REDIS_SENTINELS = env.list("REDIS_SENTINELS", default=[])
    if REDIS_SENTINELS:
        _master = env.str("REDIS_SENTINEL_MASTER", default="")
        if not _master:
            raise ImproperlyConfigured("REDIS_SENTINELS is set: REDIS_SENTINEL_MASTER must name the master set.")
        try:
            _sentinels = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1])) for h in REDIS_SENTINELS]
        except (IndexError, ValueError) as exc:
            raise ImproperlyConfigured("REDIS_SENTINELS must look like host1:26379,host2:26379.") from exc
        _redis_host = {key: value for key, value in _redis_host.items() if key != "address"}
        _redis_host.update(sentinels=_sentinels, master_name=_master, db=int((_redis.path or "/0").lstrip("/") or 0))
    # Redis Pub/Sub channels are not per Redis database: deployments (or benchmarks)
    # sharing one Redis keep apart by prefix.
    _prefix = env.str("CHANNEL_LAYER_PREFIX", default="asgi")
    if CHANNEL_LAYER_BACKEND == "channels_redis.core.RedisChannelLayer":
        _layer_config = {"hosts": [_redis_host], "capacity": 1500, "expiry": 60, "prefix": _prefix}
    elif CHANNEL_LAYER_BACKEND == "channels_redis.pubsub.RedisPubSubChannelLayer":
        # No capacity or expiry: Pub/Sub never queues in Redis.
        _layer_config = {"hosts": [_redis_host], "prefix": _prefix}
    else:
        raise ImproperlyConfigured(
            "CHANNEL_LAYER_BACKEND must be channels_redis.core.RedisChannelLayer or "
            f"channels_redis.pubsub.RedisPubSubChannelLayer, not {CHANNEL_LAYER_BACKEND!r}."
        )
    CHANNEL_LAYERS = {"default": {"BACKEND": CHANNEL_LAYER_BACKEND, "CONFIG": _layer_config}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache holds rate-limit counters (login, API keys, tracking pages): Redis when
# configured, so every process counts together; per-process memory otherwise.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "lastmile"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Failed sign-ins allowed per username and per client address in each window.
LOGIN_THROTTLE_WINDOW_S = env.int("LOGIN_THROTTLE_WINDOW_S", default=300)
LOGIN_THROTTLE_PER_USERNAME = env.int("LOGIN_THROTTLE_PER_USERNAME", default=10)
LOGIN_THROTTLE_PER_ADDRESS = env.int("LOGIN_THROTTLE_PER_ADDRESS", default=50)

# Seconds between heartbeats on every live socket; clients treat ~2.5 missed
# heartbeats as a dead connection and reconnect.
REALTIME_HEARTBEAT_S = env.float("REALTIME_HEARTBEAT_S", default=10.0)

# --- tracking ---------------------------------------------------------------
# Location pings (apps/tracking). The filters are modelled on Traccar's: a ping less
# accurate than LOCATION_MAX_ACCURACY_M, or implying a jump faster than
# LOCATION_MAX_SPEED_MPS (70 m/s is 250 km/h: no delivery vehicle, only GPS noise), is
# stored but not shown. Device times further than LOCATION_FUTURE_TOLERANCE_S ahead
# of the server are refused; older than LOCATION_MAX_AGE_H, stored but not shown.
LOCATION_MAX_ACCURACY_M = env.float("LOCATION_MAX_ACCURACY_M", default=100.0)
LOCATION_MAX_SPEED_MPS = env.float("LOCATION_MAX_SPEED_MPS", default=70.0)
LOCATION_FUTURE_TOLERANCE_S = env.int("LOCATION_FUTURE_TOLERANCE_S", default=120)
LOCATION_MAX_AGE_H = env.int("LOCATION_MAX_AGE_H", default=12)
LOCATION_RETENTION_DAYS = env.int("LOCATION_RETENTION_DAYS", default=30)
# An on-duty driver silent this long raises driver.location_stale; the check runs in
# the position fan-out thread every LOCATION_STALE_CHECK_S.
LOCATION_STALE_AFTER_S = env.int("LOCATION_STALE_AFTER_S", default=300)
LOCATION_STALE_CHECK_S = env.float("LOCATION_STALE_CHECK_S", default=30.0)
# Positions go to consoles coalesced: one message per organization every tick, each driver at
# most once per LOCATION_FANOUT_MIN_INTERVAL_S (a short tick keeps latency low; the interval
# keeps a fast-pinging driver from flooding consoles).
LOCATION_FANOUT_TICK_S = env.float("LOCATION_FANOUT_TICK_S", default=0.1)
LOCATION_FANOUT_MIN_INTERVAL_S = env.float("LOCATION_FANOUT_MIN_INTERVAL_S", default=1.0)
# Pings per call (WebSocket batch or HTTP backlog); the rest are refused, to be resent.
LOCATION_MAX_BATCH = env.int("LOCATION_MAX_BATCH", default=5000)
# Live pings (WebSocket) are stored in group commits: each process's writer thread stores
# every driver's pending batches in one transaction at most every LOCATION_WRITE_TICK_S, and
# acknowledges them once committed. At most LOCATION_WRITE_MAX_PENDING pings wait in memory;
# past that, sockets wait for room (docs/realtime.md, "Storing live pings").
LOCATION_WRITE_TICK_S = env.float("LOCATION_WRITE_TICK_S", default=0.05)
LOCATION_WRITE_MAX_PENDING = env.int("LOCATION_WRITE_MAX_PENDING", default=20000)
for _name in ("LOCATION_MAX_ACCURACY_M", "LOCATION_MAX_SPEED_MPS", "LOCATION_FUTURE_TOLERANCE_S", "LOCATION_MAX_AGE_H",
              "LOCATION_RETENTION_DAYS", "LOCATION_STALE_AFTER_S", "LOCATION_STALE_CHECK_S", "LOCATION_FANOUT_TICK_S",
              "LOCATION_FANOUT_MIN_INTERVAL_S", "LOCATION_MAX_BATCH", "LOCATION_WRITE_TICK_S",
              "LOCATION_WRITE_MAX_PENDING"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be greater than 0, not {globals()[_name]!r}.")
if LOCATION_RETENTION_DAYS * 24 < LOCATION_MAX_AGE_H:
    raise ImproperlyConfigured("LOCATION_RETENTION_DAYS must cover at least LOCATION_MAX_AGE_H.")
# --- end tracking -----------------------------------------------------------

# --- proof of delivery ------------------------------------------------------
# Photos and signatures (apps/pod). The byte limit is checked before Pillow sees a
# byte; the pixel limit is checked on the header (Pillow's decompression-bomb warning
# is an error here), so a 300-byte PNG claiming 20,000 x 20,000 pixels is never decoded.
# 15 MB holds a 50-megapixel phone JPEG; 60 MP is above any phone camera in use.
POD_MAX_UPLOAD_BYTES = env.int("POD_MAX_UPLOAD_BYTES", default=15 * 1024 * 1024)
POD_MAX_PIXELS = env.int("POD_MAX_PIXELS", default=60_000_000)
# Signed media URLs live this long; a page showing a POD asks again when they expire.
POD_MEDIA_URL_TTL_S = env.int("POD_MEDIA_URL_TTL_S", default=300)
# A POD captured further than this from the delivery address is flagged for review
# (the reliability plan's 300 m; phone GPS in a city is rarely off by more than 50 m).
POD_FAR_FROM_ADDRESS_M = env.float("POD_FAR_FROM_ADDRESS_M", default=300.0)
# Photos and signatures are purged this many days after upload (each organization may set
# its own, apps.pod.models.PodSettings); the POD rows and the files' SHA-256 are kept.
POD_MEDIA_RETENTION_DAYS = env.int("POD_MEDIA_RETENTION_DAYS", default=180)
for _name in ("POD_MAX_UPLOAD_BYTES", "POD_MAX_PIXELS", "POD_MEDIA_URL_TTL_S", "POD_FAR_FROM_ADDRESS_M",
              "POD_MEDIA_RETENTION_DAYS"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be greater than 0, not {globals()[_name]!r}.")
# Uploads go to temporary files above this size instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# --- end proof of delivery --------------------------------------------------
# The public tracking page, its API and socket: requests per client address per minute
# (docs/tracking.md); X-Forwarded-For is believed only behind a proxy that sets it.
TRACKING_RATE_PER_MIN = env.int("TRACKING_RATE_PER_MIN", default=120)
TRACKING_TRUST_FORWARDED_FOR = env.bool("TRACKING_TRUST_FORWARDED_FOR", default=PRODUCTION)
if TRACKING_RATE_PER_MIN <= 0:
    raise ImproperlyConfigured(f"TRACKING_RATE_PER_MIN must be greater than 0, not {TRACKING_RATE_PER_MIN!r}.")
# Web Push (notifications opted into on the tracking page): a VAPID key pair, e.g. from
# `python -c "from py_vapid import Vapid; v=Vapid(); v.generate_keys(); ..."` (docs/notifications.md).
WEBPUSH_VAPID_PUBLIC_KEY = env.str("WEBPUSH_VAPID_PUBLIC_KEY", default="")
WEBPUSH_VAPID_PRIVATE_KEY = env.str("WEBPUSH_VAPID_PRIVATE_KEY", default="")
WEBPUSH_VAPID_SUBJECT = env.str("WEBPUSH_VAPID_SUBJECT", default="mailto:ops@example.com")
if bool(WEBPUSH_VAPID_PUBLIC_KEY) != bool(WEBPUSH_VAPID_PRIVATE_KEY):
    raise ImproperlyConfigured("Set both WEBPUSH_VAPID_PUBLIC_KEY and WEBPUSH_VAPID_PRIVATE_KEY, or neither.")

# --- customer notifications (apps/notifications, docs/notifications.md) ------
# Links in messages point here (the tracking page); in production, https:// on the first
# of ALLOWED_HOSTS unless set.
LASTMILE_PUBLIC_URL = env.str("LASTMILE_PUBLIC_URL", default=f"https://{ALLOWED_HOSTS[0]}" if PRODUCTION
                              else "http://127.0.0.1:8000")
if not LASTMILE_PUBLIC_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"LASTMILE_PUBLIC_URL must start with http:// or https://, not {LASTMILE_PUBLIC_URL!r}.")
MAILERS = {"default": {"BACKEND": env.str(
    "EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend" if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend")}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="deliveries@localhost")
# SMS: "log" writes texts to the log (the default: nothing leaves the machine); "twilio"
# sends them, and needs the account, a sender and the callback URL for delivery reports.
NOTIFY_SMS_BACKEND = env.str("NOTIFY_SMS_BACKEND", default="log")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM = env.str("TWILIO_FROM", default="")
TWILIO_STATUS_CALLBACK_URL = env.str("TWILIO_STATUS_CALLBACK_URL", default="")
if NOTIFY_SMS_BACKEND not in ("log", "twilio"):
    raise ImproperlyConfigured(f"NOTIFY_SMS_BACKEND must be 'log' or 'twilio', not {NOTIFY_SMS_BACKEND!r}.")
if NOTIFY_SMS_BACKEND == "twilio" and not (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN and TWILIO_FROM):
    raise ImproperlyConfigured("NOTIFY_SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM.")
# A message whose provider keeps failing is retried with backoff (30 s doubling, at most
# 30 min apart) this many times in all before it is marked failed: about 4 hours.
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=12)
if NOTIFY_MAX_ATTEMPTS <= 0:
    raise ImproperlyConfigured(f"NOTIFY_MAX_ATTEMPTS must be greater than 0, not {NOTIFY_MAX_ATTEMPTS!r}.")

# --- ETAs (apps/eta, docs/eta.md) -------------------------------------------
# A live position older than this is not used as the driver's whereabouts (the last
# visit is); a route plan is reloaded after ETA_PLAN_TTL_S even if nothing changed here
# (another process may have changed the route); the provider is asked for the first leg
# at most every ETA_LEG_REFRESH_S per route. An ETA moving by less than ETA_MIN_CHANGE_S
# is not written or pushed; a driver's ETAs are refreshed at most every
# ETA_MIN_INTERVAL_S. A stop is at late risk when predicted more than ETA_LATE_MARGIN_S
# after its window closes, and the alert clears when it is back ETA_LATE_CLEAR_S inside.
ETA_POSITION_MAX_AGE_S = env.int("ETA_POSITION_MAX_AGE_S", default=600)
ETA_PLAN_TTL_S = env.float("ETA_PLAN_TTL_S", default=60.0)
ETA_LEG_REFRESH_S = env.float("ETA_LEG_REFRESH_S", default=60.0)
ETA_MIN_CHANGE_S = env.int("ETA_MIN_CHANGE_S", default=30)
ETA_MIN_INTERVAL_S = env.float("ETA_MIN_INTERVAL_S", default=2.0)
ETA_LATE_MARGIN_S = env.int("ETA_LATE_MARGIN_S", default=0)
ETA_LATE_CLEAR_S = env.int("ETA_LATE_CLEAR_S", default=120)
for _name in ("ETA_POSITION_MAX_AGE_S", "ETA_PLAN_TTL_S", "ETA_LEG_REFRESH_S", "ETA_MIN_CHANGE_S", "ETA_MIN_INTERVAL_S"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be greater than 0, not {globals()[_name]!r}.")
for _name in ("ETA_LATE_MARGIN_S", "ETA_LATE_CLEAR_S"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must not be negative, not {globals()[_name]!r}.")

# --- background tasks -------------------------------------------------------

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "webhooks", "optimize", "notifications"],
    }
}
# The embedded default runs the task worker as a thread inside the web process
# (see apps.common.worker); production runs `manage.py db_worker` processes.
INPROCESS_WORKER = env.bool("LASTMILE_INPROCESS_WORKER", default=False)
# A worker renews its lease every third of this; a RUNNING job whose worker has not
# renewed for this long is run again elsewhere (apps/common/jobs.py). A job whose worker
# died this many times is failed instead.
WORKER_LEASE_S = env.int("WORKER_LEASE_S", default=30)
WORKER_MAX_ATTEMPTS = env.int("WORKER_MAX_ATTEMPTS", default=5)
# bench/inbound.py's unauthenticated no-op baseline route (/hooks/noop); off unless asked for.
INBOUND_NOOP_ENDPOINT = env.bool("INBOUND_NOOP_ENDPOINT", default=False)

# Periodic jobs, enqueued by whichever worker's lease beat finds them due
# (apps/common/schedule.py): retention purges and other housekeeping.
PERIODIC_JOBS: dict[str, dict] = {
    "location-history-prune": {"task": "apps.tracking.tasks.location_history_prune",
                               "every_s": env.int("LOCATION_PRUNE_EVERY_S", default=3600)},
    "integrations-sweep": {"task": "apps.integrations.tasks.integrations_sweep",
                           "every_s": env.int("INTEGRATIONS_SWEEP_EVERY_S", default=60)},
    "integrations-reconcile": {"task": "apps.integrations.tasks.reconcile_all",
                               "every_s": env.int("INTEGRATIONS_RECONCILE_EVERY_S", default=900)},
    "inbound-retention": {"task": "apps.integrations.tasks.inbound_retention",
                          "every_s": env.int("INBOUND_RETENTION_EVERY_S", default=3600)},
    # Late location backlogs add route distance without an event: re-settle recent days.
    "reports-settle": {"task": "apps.reports.tasks.reports_settle", "every_s": 3600},
    "pod-media-purge": {"task": "apps.pod.tasks.pod_media_purge",
                        "every_s": env.int("POD_MEDIA_PURGE_EVERY_S", default=3600)},
    "planning-housekeeping": {"task": "apps.planning.tasks.planning_housekeeping",
                              "every_s": env.int("PLANNING_HOUSEKEEPING_EVERY_S", default=60)},
}

# --- auth -------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- i18n / time ------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
    raise ImproperlyConfigured(f"TIME_ZONE {TIME_ZONE!r} is not a known IANA time zone.") from exc
USE_I18N = True
USE_TZ = True

# --- static and media -------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# npm installs third-party front-end packages; frontend/scripts/vendor.mjs copies
# the exact dist files we use into frontend/vendor/ (ignored by git).
STATICFILES_DIRS = [
    (name, BASE_DIR / "frontend" / name)
    for name in ("common", "console", "driver", "track", "vendor")
    if (BASE_DIR / "frontend" / name).is_dir()
]
# Map base layer for the console and tracking pages, e.g. a self-hosted tile server
# ("https://tiles.example.com/{z}/{x}/{y}.png"). Empty: no tiles, zero external requests.
MAP_TILE_URL = env.str("MAP_TILE_URL", default="")
MAP_TILE_ATTRIBUTION = env.str("MAP_TILE_ATTRIBUTION", default="")
if MAP_TILE_URL and not all(part in MAP_TILE_URL for part in ("{z}", "{x}", "{y}")):
    raise ImproperlyConfigured(f"MAP_TILE_URL must contain {{z}}, {{x}} and {{y}}, not {MAP_TILE_URL!r}.")
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))

MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="s3" if PRODUCTION else "filesystem")
if MEDIA_STORAGE == "s3":
    _media_backend = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": _required("AWS_STORAGE_BUCKET_NAME") if PRODUCTION else env.str("AWS_STORAGE_BUCKET_NAME", default=""),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
elif MEDIA_STORAGE == "filesystem":
    _media_backend = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    raise ImproperlyConfigured(f"MEDIA_STORAGE must be 's3' or 'filesystem', not {MEDIA_STORAGE!r}.")

STORAGES = {
    "default": _media_backend,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- REST API ---------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.HasScope"],
    "DEFAULT_PARSER_CLASSES": ["apps.common.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "EXCEPTION_HANDLER": "apps.common.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {"api_client": env.str("API_CLIENT_RATE", default="6000/min")},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Lastmile API",
    "DESCRIPTION": (
        "Last-mile delivery platform: hubs, fleet, orders, routes, stops and the event log. "
        "Authenticate with `Authorization: Bearer <api key>` (partner systems) or a session (browser apps). "
        "Errors are JSON objects with a stable `code`, a human `message` and, for validation errors, `fields`."
    ),
    "VERSION": "1.0.0",
    # 3.1 allows "null" as a type, which the pydantic input contracts use for optional fields.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.common.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "OrderStateEnum": "apps.dispatch.models.OrderState",
        "StopStateEnum": "apps.dispatch.models.StopState",
        "RouteStatusEnum": "apps.dispatch.models.RouteStatus",
        "FailureReasonEnum": "apps.dispatch.models.FailureReason",
        "StopKindEnum": "apps.dispatch.models.StopKind",
        "PodMediaKindEnum": "apps.pod.models.MediaKind",
        "DispatchExceptionKindEnum": "apps.pod.models.ExceptionKind",
        "DriverActionTypeEnum": ["arrive", "complete", "fail"],
        "InboundStatusEnum": "apps.integrations.models.InboundStatus",
        "ConnectionKindEnum": "apps.integrations.models.ConnectionKind",
        "TaxonomyEnum": "apps.integrations.models.Taxonomy",
    },
}

# Bodies above this are refused with 413 before they are read. A bulk request
# of 1,000 orders with items is about 1 MB.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
BULK_MAX_ORDERS = 1000

# --- integrations -----------------------------------------------------------
# Inbound webhooks over plain HTTP get a 403 (never a redirect) when this is on.
INTEGRATIONS_REQUIRE_HTTPS = env.bool("INTEGRATIONS_REQUIRE_HTTPS", default=PRODUCTION)
# Outbound webhooks refuse private, loopback and link-local destinations at send time;
# these networks (CIDR, comma-separated) are allowed anyway (tests, on-premise partners).
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
# The inbound webhook view does its database work on the event loop's thread pool
# (apps/integrations/hooks.py); tests run it on the request's own thread instead.
INBOUND_DB_THREAD_SENSITIVE = env.bool("INBOUND_DB_THREAD_SENSITIVE", default=False)
# Threads (and so database connections) per web process for storing inbound webhooks.
INBOUND_DB_THREADS = env.int("INBOUND_DB_THREADS", default=12)
# Raw inbound bodies and headers (personal data) of processed messages are emptied after
# this many days (a connection's options.raw_retention_days overrides it); the audit
# record and the body's hash stay (apps/integrations/services/retention.py).
# Inbound webhook rate limits, per process (apps/common/ratelimit.TokenBuckets): each
# connection URL may deliver INBOUND_RATE_PER_S on average with bursts of INBOUND_BURST;
# requests that fail (unknown URL, bad signature) are limited together, so a flood of them
# cannot make each cost a database lookup. Over a limit: 429 with Retry-After (Shopify
# and WooCommerce deliver again later).
INBOUND_RATE_PER_S = env.float("INBOUND_RATE_PER_S", default=200.0)
INBOUND_BURST = env.float("INBOUND_BURST", default=400.0)
INBOUND_FAILURES_PER_S = env.float("INBOUND_FAILURES_PER_S", default=20.0)
INBOUND_RAW_RETENTION_DAYS = env.int("INBOUND_RAW_RETENTION_DAYS", default=30)
if INBOUND_RAW_RETENTION_DAYS < 1:
    raise ImproperlyConfigured(f"INBOUND_RAW_RETENTION_DAYS must be at least 1, not {INBOUND_RAW_RETENTION_DAYS!r}.")
WEBHOOK_TIMEOUT_S = env.float("WEBHOOK_TIMEOUT_S", default=10.0)
# --- end integrations ---------------------------------------------------------

# --- security ---------------------------------------------------------------

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Inbound webhooks are never redirected (WooCommerce counts a redirect as delivered);
    # the view refuses plain HTTP with a 403 instead (INTEGRATIONS_REQUIRE_HTTPS).
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^hooks/"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[f"https://{h}" for h in ALLOWED_HOSTS])
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- logging ----------------------------------------------------------------

# JSON lines in production (one object per line, with the request id), plain text in
# development. LOG_FORMAT overrides either.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'plain', not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.common.observability.RequestIdFilter"},
                "over_capacity": {"()": "apps.realtime.capacity.OverCapacityFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "apps.common.observability.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Its INFO line about full channels becomes a WARNING and a metric (apps/realtime/capacity.py).
        "channels_redis.core": {"level": "INFO", "filters": ["over_capacity"]},
        # One access line per request comes from RequestContextMiddleware; this one is at
        # WARNING so development consoles stay readable (LOG_ACCESS=true shows them).
        "lastmile.request": {"level": "INFO" if env.bool("LOG_ACCESS", default=PRODUCTION) else "WARNING"},
    },
}

# Prometheus scrapes /metrics; with a token set it must send it as a bearer token. In
# production the endpoint answers only when a token is configured.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
