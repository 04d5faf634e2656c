"""Tracking tokens: the unguessable key of a customer's tracking page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync

from apps.realtime.consumers import CloseCode
from apps.realtime.groups import track_group
from apps.realtime.protocol import track_audience
from apps.tracking.selectors import tracking_order
from apps.tracking.services import tracking_token_issue, tracking_token_revoke
from tests.factories import OrderFactory

from .helpers import NOW

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture
def order(acme):
    return OrderFactory(org=acme)


def test_a_token_carries_at_least_128_random_bits_in_url_safe_characters(order):
    token = tracking_token_issue(order=order).token

    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert len(token) == 32  # 24 random bytes, 192 bits: well over the 128 asked for


def test_every_issue_is_a_new_token_and_the_old_ones_keep_working(order):
    first, second = tracking_token_issue(order=order), tracking_token_issue(order=order)

    assert first.token != second.token
    assert tracking_order(token=first.token) == order
    assert tracking_order(token=second.token) == order


def test_a_token_belongs_to_the_orders_organization(order, acme):
    assert tracking_token_issue(order=order).org_id == acme.pk


def test_a_token_opens_its_order_with_the_organization_loaded(order, django_assert_num_queries):
    token = tracking_token_issue(order=order).token

    with django_assert_num_queries(1):
        found = tracking_order(token=token)
        assert found.org.slug == "acme"


@pytest.mark.parametrize("token", ["", "nope", "x" * 65, None, 42])
def test_an_unknown_or_malformed_token_opens_nothing(order, token):
    tracking_token_issue(order=order)

    assert tracking_order(token=token) is None


def test_a_token_is_matched_exactly(order):
    token = tracking_token_issue(order=order).token

    assert tracking_order(token=token.swapcase()) is None
    assert tracking_order(token=token[:-1]) is None


def test_a_revoked_token_opens_nothing(order):
    token = tracking_token_issue(order=order)

    tracking_token_revoke(token=token)

    assert token.revoked_at == NOW
    assert tracking_order(token=token.token) is None


def test_revoking_twice_keeps_the_first_revocation_time(order, clock):
    token = tracking_token_issue(order=order)
    tracking_token_revoke(token=token)
    clock.shift(timedelta(hours=1))

    assert tracking_token_revoke(token=token).revoked_at == NOW


def test_an_expired_token_opens_nothing(order, clock):
    token = tracking_token_issue(order=order, expires_at=NOW + timedelta(days=2))
    assert tracking_order(token=token.token) == order

    clock.shift(timedelta(days=2))

    assert tracking_order(token=token.token) is None


def test_the_tracking_socket_admits_a_valid_token_and_refuses_a_revoked_one(order):
    token = tracking_token_issue(order=order)

    audience, _ = track_audience(token.token)
    assert audience is not None and audience.order_id == order.pk and audience.org_id == order.org_id

    tracking_token_revoke(token=token)
    assert track_audience(token.token) == (None, CloseCode.NOT_FOUND)


def test_revoking_closes_the_tracking_pages_open_on_the_order(order, settings, django_capture_on_commit_callbacks):
    from channels.layers import get_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    page = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(track_group(order.pk), page)
    token = tracking_token_issue(order=order)

    with django_capture_on_commit_callbacks(execute=True):
        tracking_token_revoke(token=token)

    message = async_to_sync(layer.receive)(page)
    assert message["type"] == "lastmile.control" and message["action"] == "revoke"
