"""Production settings come from the environment and fail loudly when wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "LASTMILE_ENV": "production",
    "SECRET_KEY": "k" * 20 + "Qx9!pL2#vB7@mN4$zR8%tY1^wE5&uI3*oP6(aS0)dF" + "z" * 10,
    "ALLOWED_HOSTS": "lastmile.example.com",
    "DATABASE_URL": "postgres://lastmile:secret@db.internal:5432/lastmile",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "AWS_STORAGE_BUCKET_NAME": "lastmile-media",
}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in {*GOOD, "CI", "DEBUG", "MEDIA_STORAGE", "LASTMILE_TEST_DB", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_a_complete_production_environment_passes_the_deploy_check():
    result = _run(GOOD, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL",
                                     "AWS_STORAGE_BUCKET_NAME"])
def test_a_missing_production_setting_stops_startup_naming_it(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}

    result = _run(env, "check")

    assert result.returncode != 0
    assert f"{missing} is required when LASTMILE_ENV=production" in result.stderr


@pytest.mark.parametrize(("name", "value", "message"), [
    ("DATABASE_URL", "sqlite:////tmp/x.sqlite3", "must point at PostgreSQL in production"),
    ("DATABASE_URL", "nosuchdb://x", "DATABASE_URL has an unknown scheme 'nosuchdb'"),
    ("DATABASE_URL", "not a url", "DATABASE_URL has an unknown scheme"),
    ("REDIS_URL", "localhost:6379", "REDIS_URL must look like redis://"),
    ("SECRET_KEY", "short", "SECRET_KEY must be at least 50 characters"),
    ("ALLOWED_HOSTS", "*", "'*' is not allowed"),
    ("LASTMILE_ENV", "staging", "LASTMILE_ENV must be 'development' or 'production'"),
    ("MEDIA_STORAGE", "ftp", "MEDIA_STORAGE must be 's3' or 'filesystem'"),
    ("TIME_ZONE", "Mars/Olympus", "is not a known IANA time zone"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT must be 'json' or 'plain'"),
    ("REDIS_SENTINELS", "sentinel-a:26379", "REDIS_SENTINEL_MASTER must name the master set"),
])
def test_a_malformed_production_setting_stops_startup_with_a_clear_message(name, value, message):
    result = _run({**GOOD, name: value}, "check")

    assert result.returncode != 0
    assert message in result.stderr


def test_development_needs_no_settings_at_all():
    result = _run({"DATABASE_URL": "sqlite:////tmp/lastmile-settings-test.sqlite3"}, "check")

    assert result.returncode == 0, result.stderr


def test_sentinels_replace_the_redis_host_in_the_channel_layer():
    code = ("from django.conf import settings; h = settings.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0]; "
            "print(h['master_name'], h['sentinels'], h['db'], 'address' in h)")
    result = _run({**GOOD, "REDIS_URL": "redis://ignored:6379/3", "REDIS_SENTINELS": "s1.internal:26379,s2.internal:26380",
                   "REDIS_SENTINEL_MASTER": "lastmile"}, "shell", "-c", code)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "lastmile [('s1.internal', 26379), ('s2.internal', 26380)] 3 False"


def test_production_logs_are_json_lines():
    code = "import logging; logging.getLogger('lastmile.test').warning('hello %s', 'ops')"
    result = _run(GOOD, "shell", "-c", code)

    assert result.returncode == 0, result.stderr
    line = [ln for ln in result.stderr.splitlines() if "lastmile.test" in ln][-1]
    import json

    entry = json.loads(line)
    assert entry["message"] == "hello ops" and entry["level"] == "WARNING" and entry["request_id"] == "-"
