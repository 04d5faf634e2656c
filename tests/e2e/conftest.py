"""Browser fixtures for end-to-end tests: pytest-playwright's `page`, driven by the
system Chromium (Debian's `chromium` package) instead of a downloaded browser.

Run these in their own pytest invocation (`pytest -m e2e -p no:asyncio`): sync
Playwright runs an event loop in the main thread, which clashes with
pytest-asyncio's. tests/conftest.py sets DJANGO_ALLOW_ASYNC_UNSAFE for the same
reason: the live server's ORM calls happen while that loop is running.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = os.environ.get("LASTMILE_CHROMIUM", "/usr/bin/chromium")
# No background traffic from the browser itself, so "no request left localhost"
# is a statement about the page.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session", autouse=True)
def _front_end_ready() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: apt-get install -y chromium (or set LASTMILE_CHROMIUM).")
    vendor = Path(settings.BASE_DIR) / "frontend" / "vendor" / "leaflet"
    if not vendor.is_dir():
        pytest.fail("frontend/vendor/ is missing: run `npm ci && npm run vendor` in frontend/.")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}, "locale": "en-GB"}
