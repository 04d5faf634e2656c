"""Shared fixtures: personas, API clients, and the CI guard for real services.

Personas (see STYLE.md): Alice is the admin and Dave the dispatcher of Acme; Bob
drives for Acme; Carol dispatches for Globex and must never see Acme's data.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import (
    DriverFactory,
    HubFactory,
    OrganizationFactory,
    VehicleFactory,
    member,
)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    # Consumers reach the database from thread-pool threads; persistent connections
    # would outlive the tests and stop PostgreSQL from dropping the test database.
    # The pool (production's default on PostgreSQL) would hold connections to the test
    # database the same way; the pooled path is tested through real server processes
    # (tests/faults/test_database_restart.py).
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    settings.DATABASES["default"].get("OPTIONS", {}).pop("pool", None)
    # Rate-limit counters of one run (or one parallel helper) never meet another's in Redis.
    settings.CACHES["default"]["KEY_PREFIX"] = f"test-{os.getpid()}-{os.urandom(4).hex()}"
    # Nor its pushes: Redis Pub/Sub channels are not per database, and every test database
    # numbers its organizations from 1. Server processes the tests start inherit the prefix.
    prefix = os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"test-{os.getpid()}-{os.urandom(3).hex()}")
    for layer in settings.CHANNEL_LAYERS.values():
        if "CONFIG" in layer:
            layer["CONFIG"]["prefix"] = prefix


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI the suite must run against PostgreSQL and Redis, and fail (not skip) without them."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    problems = []
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        problems.append(f"CI=true but the database engine is {db['ENGINE']}; set DATABASE_URL to PostgreSQL")
    elif not _reachable(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)):
        problems.append(f"PostgreSQL at {db.get('HOST')}:{db.get('PORT')} is unreachable")
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        problems.append("CI=true but REDIS_URL is not set")
    else:
        parsed = urlparse(redis_url)
        if not _reachable(parsed.hostname or "127.0.0.1", parsed.port or 6379):
            problems.append(f"Redis at {redis_url} is unreachable")
    if problems:
        pytest.exit("Required services missing under CI: " + "; ".join(problems), returncode=3)


@pytest.fixture(autouse=True)
def _no_background_fanout(monkeypatch):
    # The coalescer thread would otherwise start with the first ping and keep running
    # its stale check into later tests' databases; tests flush it explicitly.
    from apps.tracking import fanout

    monkeypatch.setattr(fanout.coalescer, "autostart", False)


@pytest.fixture(autouse=True)
def _ping_writer_and_caches():
    # The ping writer's thread starts with the first live ping and holds a database
    # connection: stop it (storing what is pending) before the test database goes.
    # Cached log heads and snapshots belong to this test's organizations only.
    from apps.realtime.consumers import log_heads
    from apps.realtime.protocol import shared_snapshots
    from apps.tracking.writer import ping_writer

    log_heads.clear()
    shared_snapshots.clear()
    yield
    ping_writer.stop()
    log_heads.clear()
    shared_snapshots.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is for attackers, not for a test suite creating personas.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def acme(db):
    return OrganizationFactory(name="Acme Deliveries", slug="acme")


@pytest.fixture
def globex(db):
    return OrganizationFactory(name="Globex Logistics", slug="globex")


@pytest.fixture
def alice(acme):
    return member(acme, "alice", "admin")


@pytest.fixture
def dave(acme):
    return member(acme, "dave", "dispatcher")


@pytest.fixture
def carol(globex):
    return member(globex, "carol", "dispatcher")


@pytest.fixture
def acme_hub(acme):
    return HubFactory(org=acme)


@pytest.fixture
def acme_van(acme, acme_hub):
    return VehicleFactory(org=acme, home_hub=acme_hub)


@pytest.fixture
def bob(acme, acme_hub, acme_van):
    """Bob drives Acme's van."""
    return DriverFactory(org=acme, name="Bob Baker", home_hub=acme_hub, current_vehicle=acme_van)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def as_dave(dave) -> APIClient:
    return client_for(dave)


@pytest.fixture
def as_alice(alice) -> APIClient:
    return client_for(alice)


@pytest.fixture
def as_carol(carol) -> APIClient:
    return client_for(carol)


@pytest.fixture
def as_bob(bob) -> APIClient:
    return client_for(bob.user)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()
