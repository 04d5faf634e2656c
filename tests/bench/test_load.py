"""bench/load.py's building blocks, in process: what its clients send is what the
server accepts, and its after-run check finds a write that did not land."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections import Counter

import pytest
from django.test import Client
from django.utils.datastructures import CaseInsensitiveMapping

from apps.integrations.adapters import connection_secrets
from apps.integrations.models import Connection
from apps.integrations.services.inbound import inbound_process, inbound_receive
from apps.integrations.shopify.verify import verify as shopify_verify
from apps.pod.media import check_image
from bench.load import Phase, steps_for
from bench.load_clients import multipart, summary
from bench.load_world import (
    Accepted,
    camera_jpeg,
    cleanup,
    shopify_delivery,
    shopify_template,
    unique_photo,
    verify,
    world_create,
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def world(db):
    made = world_create("t1", drivers=3, consoles=1, stops=4)
    yield made
    cleanup("t1", made.session_keys)


def test_every_kind_scales_with_the_fleet():
    small, large = steps_for([250, 1000], orders_per_hour=15, stops_per_hour=15)
    assert (small.consoles, large.consoles) == (2, 10)
    assert large.rates["completion"] == pytest.approx(4 * small.rates["completion"]) == pytest.approx(1000 / 240)
    assert large.rates["webhook"] + large.rates["order API"] == pytest.approx(1000 / 240)


def test_each_photo_is_a_new_valid_jpeg_of_the_same_picture():
    base = camera_jpeg(160, 120)
    one, two = unique_photo(base, "stop 1"), unique_photo(base, "stop 2")
    assert hashlib.sha256(one).digest() != hashlib.sha256(two).digest()
    checked = check_image(one, kind="photo")
    assert (checked.width, checked.height, checked.original_format) == (160, 120, "JPEG")


def test_a_step_that_misses_a_threshold_or_answers_5xx_does_not_hold():
    step = steps_for([250], 15, 15)[0]
    fast = summary([20.0] * 99 + [40.0], sent=100, ok=100, errors=Counter(), seconds=10)
    slow = summary([20.0] * 98 + [900.0, 900.0], sent=100, ok=100, errors=Counter(), seconds=10)
    assert Phase("mixed", step, 10, kinds={"ping": fast}).failures() == []
    assert Phase("mixed", step, 10, kinds={"ping": slow}).failures() == ["ping p99 900 ms > 250 ms"]
    assert Phase("mixed", step, 10, kinds={"ping": fast}, five_xx=Counter({"photo 503": 1})).failures() == ["1 x photo 503"]
    lossy = summary([20.0] * 90, sent=100, ok=90, errors=Counter({"no ack": 10}), seconds=10)
    assert Phase("mixed", step, 10, kinds={"ping": lossy}).failures() == ["ping 10.0% errors (no ack x10)"]
    assert math.isnan(summary([], sent=0, ok=0, errors=Counter(), seconds=10)["p99"])


def test_a_shopify_delivery_is_signed_and_becomes_one_order(world):
    body, headers = shopify_delivery(shopify_template(), world.run_id, 7)
    connection = Connection.objects.get(org_id=world.org_id)
    assert shopify_verify(secrets=connection_secrets(connection), body=body, headers=headers)
    message = inbound_receive(connection=connection, headers=CaseInsensitiveMapping(headers), body=body).message
    assert inbound_process(message_id=message.pk).order is not None

    accepted = Accepted(webhooks=[headers["X-Shopify-Event-Id"]], shopify_orders=[str(json.loads(body)["id"])])
    assert verify(world, accepted, worker_timeout=0) == []
    missing = Accepted(webhooks=["never-sent"], shopify_orders=["1"])
    assert verify(world, missing, worker_timeout=0) == ["1 acknowledged webhooks not stored",
                                                         "1 Shopify orders acknowledged, 0 orders made"]


def test_a_driver_completes_a_stop_with_a_photo_as_the_bench_does(world):
    driver, route, stop = world.stops[0]
    client = Client(enforce_csrf_checks=True)  # the bench's session cookie and CSRF header must pass
    client.cookies["sessionid"] = world.driver_cookies[driver].removeprefix("sessionid=")
    client.cookies["csrftoken"] = csrf = "a" * 32
    photo = unique_photo(camera_jpeg(320, 240), "stop")
    sha = hashlib.sha256(photo).hexdigest()
    body, content_type = multipart({"kind": "photo", "sha256": sha, "stop": str(stop)}, "file", "photo.jpg", photo,
                                   "image/jpeg")
    uploaded = client.post("/api/v1/pod/media/", body, content_type=content_type, HTTP_X_CSRFTOKEN=csrf)
    assert uploaded.status_code == 201, uploaded.content
    action = str(uuid.uuid4())
    completed = client.post("/api/v1/driver/actions/", {"id": action, "type": "complete", "stop": stop, "route": route,
                                                         "pod": {"photos": [sha]}},
                            content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert completed.status_code == 200 and completed.json()["outcome"] == "applied", completed.content

    assert verify(world, Accepted(completed=[(stop, sha, action)]), worker_timeout=0) == []
    _, _, other = world.stops[1]
    assert verify(world, Accepted(completed=[(other, sha, str(uuid.uuid4()))]), worker_timeout=0) == [
        "1 stops acknowledged as completed are not completed",
        "1 completed stops without exactly one proof holding their photo",
        "1 completions acknowledged, 0 driver actions stored"]


def test_the_knee_is_the_last_step_that_held():
    from bench.load import knee

    small, middle, large = steps_for([250, 500, 1000], 15, 15)
    fast = summary([10.0] * 10, sent=10, ok=10, errors=Counter(), seconds=10)
    slow = summary([900.0] * 10, sent=10, ok=10, errors=Counter(), seconds=10)
    run = [[Phase("mixed", small, 30, kinds={"ping": fast})], [Phase("mixed", middle, 30, kinds={"ping": fast})],
           [Phase("mixed", large, 30, kinds={"ping": slow})]]
    assert knee(run) == "last step that held: 500 drivers; 1000 drivers did not (ping p99 900 ms > 250 ms)"
    assert knee(run[:2]) == "not reached; every step held, the last at 500 drivers"
    assert knee(run[2:]).startswith("last step that held: none")
