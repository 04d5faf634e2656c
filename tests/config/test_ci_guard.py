"""Under CI the suite runs against PostgreSQL and Redis, and fails (never skips) without them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pytest_under_ci(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CI")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/dispatch/test_lifecycle.py", "-k", "covers_every_action"],
        cwd=ROOT, env={**clean, "CI": "true", **env}, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(("env", "message"), [
    ({"DATABASE_URL": "postgres://postgres@127.0.0.1:1/test", "REDIS_URL": "redis://127.0.0.1:6379/0"},
     "PostgreSQL at 127.0.0.1:1 is unreachable"),
    ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test", "REDIS_URL": "redis://127.0.0.1:1/0"},
     "Redis at redis://127.0.0.1:1/0 is unreachable"),
    ({"DATABASE_URL": "sqlite:////tmp/lastmile-ci-guard.sqlite3", "REDIS_URL": "redis://127.0.0.1:6379/0"},
     "the database engine is django.db.backends.sqlite3"),
    ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"}, "REDIS_URL is not set"),
])
def test_a_ci_run_without_its_services_fails_instead_of_skipping(env, message):
    result = _pytest_under_ci(**env)

    assert result.returncode == 3, result.stdout + result.stderr
    assert message in result.stdout + result.stderr
    assert "passed" not in result.stdout and "skipped" not in result.stdout
