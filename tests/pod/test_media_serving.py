"""Media is served only through signed, expiring links, to the organization's people,
as re-encoded images with safe headers; the original only as a download."""

from __future__ import annotations

import time_machine
from django.utils import timezone

from apps.pod.models import PodMedia, PodPolicy
from apps.pod.signing import sign_media
from tests.conftest import client_for

from . import images
from .conftest import action, upload


def _urls(client, pod_id):
    return client.get(f"/api/v1/pods/{pod_id}/").json()["photos"][0]["urls"]


def _delivered_with_photo(as_bob, stops):
    photo = upload(as_bob, images.jpeg(gps=True)).json()["sha256"]
    return action(as_bob, "complete", stops[0], pod={"photos": [photo]}).json()["pod"]


def test_dave_sees_the_display_copy_with_safe_headers(as_bob, dave, stops):
    pod = _delivered_with_photo(as_bob, stops)
    browser = client_for(dave)
    browser.force_login(dave)

    response = browser.get(_urls(browser, pod)["display"])

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Content-Disposition"] == "inline"
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xff\xd8") and b"Exif" not in body


def test_the_original_is_only_ever_a_download_with_its_hash(as_bob, dave, stops):
    pod = _delivered_with_photo(as_bob, stops)
    browser = client_for(dave)
    browser.force_login(dave)

    response = browser.get(_urls(browser, pod)["original"])

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    media = PodMedia.objects.get()
    assert response["X-Content-SHA256"] == media.sha256
    import hashlib

    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == media.sha256


def test_a_link_without_a_valid_signature_is_refused(as_bob, dave, stops):
    _delivered_with_photo(as_bob, stops)
    media = PodMedia.objects.get()
    browser = client_for(dave)
    browser.force_login(dave)

    assert browser.get(f"/api/v1/pod/media/{media.pk}/display/").status_code == 403
    assert browser.get(f"/api/v1/pod/media/{media.pk}/display/?t=forged").status_code == 403
    # A genuine link for the thumbnail does not open the original.
    thumb = sign_media(media_id=media.pk, rendition="thumb", audience=f"org:{media.org_id}")
    assert browser.get(thumb.replace("/thumb/", "/original/")).status_code == 403


def test_a_link_expires(as_bob, dave, stops, settings):
    pod = _delivered_with_photo(as_bob, stops)
    browser = client_for(dave)
    browser.force_login(dave)
    url = _urls(browser, pod)["display"]

    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=settings.POD_MEDIA_URL_TTL_S + 5)):
        response = browser.get(url)

    assert response.status_code == 403
    assert response.json()["code"] == "invalid_signature"


def test_carol_gets_404_even_with_a_genuine_acme_link(as_bob, dave, carol, stops):
    pod = _delivered_with_photo(as_bob, stops)
    browser = client_for(dave)
    url = _urls(browser, pod)["display"]
    other = client_for(carol)
    other.force_login(carol)

    assert other.get(url).status_code == 404


def test_a_signed_out_visitor_gets_nothing(as_bob, dave, stops, anonymous):
    pod = _delivered_with_photo(as_bob, stops)
    url = _urls(client_for(dave), pod)["display"]

    assert anonymous.get(url).status_code == 404


def test_the_tracking_page_gets_the_display_copy_only_when_the_organization_allows(as_bob, stops, anonymous):
    _delivered_with_photo(as_bob, stops)
    media = PodMedia.objects.get()
    url = sign_media(media_id=media.pk, rendition="display", audience=f"track:{stops[0].order_id}")

    assert anonymous.get(url).status_code == 404
    PodPolicy.objects.create(org=media.org, share_photos_with_tracking=True)
    assert anonymous.get(url).status_code == 200
    original = sign_media(media_id=media.pk, rendition="original", audience=f"track:{stops[0].order_id}")
    assert anonymous.get(original).status_code == 404


def test_the_tracking_endpoint_hands_out_display_links_only_when_allowed(as_bob, stops, anonymous):
    from apps.tracking.services import tracking_token_issue

    _delivered_with_photo(as_bob, stops)
    token = tracking_token_issue(order=stops[0].order).token
    media = PodMedia.objects.get()

    hidden = anonymous.get(f"/api/v1/tracking/{token}/pod/").json()
    PodPolicy.objects.create(org=media.org, share_photos_with_tracking=True)
    shown = anonymous.get(f"/api/v1/tracking/{token}/pod/").json()

    assert hidden["photos"] == [] and hidden["delivered_at"]
    assert len(shown["photos"]) == 1 and "/display/" in shown["photos"][0]
    assert anonymous.get(shown["photos"][0]).status_code == 200
    assert anonymous.get("/api/v1/tracking/not-a-token/pod/").status_code == 404


def test_the_tracking_page_shows_the_delivery_photo_through_the_pod_seam(as_bob, stops, anonymous):
    from apps.tracking.customer import tracking_snapshot
    from apps.tracking.pod import pod_display_url

    _delivered_with_photo(as_bob, stops)
    order = stops[0].order
    assert pod_display_url(order=order) is None  # the organization does not share photos

    PodPolicy.objects.create(org=order.org, share_photos_with_tracking=True)
    url = pod_display_url(order=order)

    assert url is not None and "/display/" in url
    order.refresh_from_db()
    assert tracking_snapshot(order=order)["pod_url"] == url  # what the customer's page shows
    assert anonymous.get(url).status_code == 200
    assert anonymous.get(url)["Content-Type"] == "image/jpeg"


def test_media_goes_through_whatever_storage_is_configured(as_bob, dave, stops, settings):
    """Only Django's storage API is used: an in-memory storage stands in for S3 here."""
    from django.core.files.storage import default_storage

    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    pod = _delivered_with_photo(as_bob, stops)
    browser = client_for(dave)
    browser.force_login(dave)

    response = browser.get(_urls(browser, pod)["display"])

    assert response.status_code == 200
    media = PodMedia.objects.get()
    assert type(default_storage._wrapped).__name__ == "InMemoryStorage"
    assert default_storage.exists(media.original)


def test_the_s3_backend_is_installed_for_production(settings):
    from storages.backends.s3 import S3Storage

    storage = S3Storage(bucket_name="pod-evidence", default_acl="private", querystring_auth=True, file_overwrite=False)

    assert storage.bucket_name == "pod-evidence" and storage.file_overwrite is False
