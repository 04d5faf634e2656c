"""Where the shared research data lives: ``../shared`` beside the repository.

CI lays a copy of shared/ beside its clone, so the path is found from this file, not
hard-coded. ``LASTMILE_SHARED`` overrides it. Under CI a missing folder fails the tests
that need it instead of skipping them: a green run must have used the real payloads.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LASTMILE_SHARED") or REPO.parent / "shared")
REALWORLD = SHARED / "data" / "realworld"
SOLOMON = SHARED / "data" / "solomon"


def require(path: Path) -> Path:
    """Return ``path``; skip the calling test locally when it is missing, fail under CI."""
    if not path.exists():
        message = f"shared data not found at {path} (set LASTMILE_SHARED)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path
