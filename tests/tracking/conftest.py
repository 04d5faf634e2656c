"""Tracking fixtures: the fan-out runs by hand (no thread, no sleeping), the clock is
frozen where a test needs it, and the channel layer is in memory."""

from __future__ import annotations

import pytest
import time_machine

from apps.tracking import fanout

from .helpers import NOW


@pytest.fixture(autouse=True)
def manual_fanout():
    """No background thread: tests flush with ``fanout.flush_now()``."""
    fanout.coalescer.stop()
    fanout.coalescer.autostart = False
    fanout.coalescer.discard_pending()
    yield fanout.coalescer
    fanout.coalescer.stop()
    fanout.coalescer.discard_pending()
    fanout.coalescer.autostart = True


@pytest.fixture
def layer(settings):
    """A fresh in-memory channel layer (also under CI, where the project uses Redis)."""
    from channels.layers import get_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


@pytest.fixture
def clock():
    """Time stands still at 09:00 UTC on a delivery day until the test moves it."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller
