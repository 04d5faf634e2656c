"""POD photos and signatures are deleted from storage after their organization's
retention period by a scheduled job; the POD record and the files' SHA-256 stay."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.conf import settings as django_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.pod.models import PodMedia, PodSettings, ProofOfDelivery
from apps.pod.signing import sign_media
from apps.pod.tasks import pod_media_purge
from tests.conftest import client_for

from . import images
from .conftest import action, upload

pytestmark = pytest.mark.django_db


def _files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _uploaded(client, days_ago: int, *, color: str) -> PodMedia:
    with time_machine.travel(timezone.now() - timedelta(days=days_ago)):
        media_id = upload(client, images.jpeg(32, 24, color=color)).json()["id"]
    return PodMedia.objects.get(pk=media_id)


def _stored(media: PodMedia, media_root) -> bool:
    names = {media.original, media.display, media.thumb}
    present = names & _files(media_root)
    assert present in (set(), names), "a media's files are purged all together or not at all"
    return bool(present)


def test_the_purge_runs_on_the_schedule():
    spec = django_settings.PERIODIC_JOBS["pod-media-purge"]
    assert import_string(spec["task"]) is pod_media_purge and spec["every_s"] <= 24 * 3600
    assert django_settings.POD_MEDIA_RETENTION_DAYS == 180


def test_media_past_retention_lose_their_files_and_keep_their_record(as_bob, media_root, stops):
    old_photo = _uploaded(as_bob, 200, color="red")
    old_signature = PodMedia.objects.get(sha256=upload(as_bob, images.png(), kind="signature", name="s.png")
                                         .json()["sha256"])
    PodMedia.objects.filter(pk=old_signature.pk).update(created_at=timezone.now() - timedelta(days=181))
    recent = _uploaded(as_bob, 179, color="blue")
    pod = action(as_bob, "complete", stops[0], pod={"photos": [old_photo.sha256, recent.sha256],
                                                   "signature": old_signature.sha256}).json()["pod"]

    assert pod_media_purge.call() == 2

    for media in (old_photo, old_signature):
        media.refresh_from_db()
        assert media.purged_at is not None and not _stored(media, media_root)
        assert len(media.sha256) == 64 and media.original_bytes > 0  # the evidence of what the file was
    recent.refresh_from_db()
    assert recent.purged_at is None and _stored(recent, media_root)
    kept = ProofOfDelivery.objects.get(pk=pod)
    assert set(kept.photos.values_list("sha256", flat=True)) == {old_photo.sha256, recent.sha256}
    assert kept.signature.sha256 == old_signature.sha256
    assert pod_media_purge.call() == 0  # nothing twice


def test_each_organization_keeps_media_for_its_own_period(as_bob, as_carol, acme, globex, media_root):
    PodSettings.objects.create(org=acme, media_retention_days=30)  # Globex has no row: the default, 180 days
    ages = {"acme": {}, "globex": {}}
    for days, color in ((200, "red"), (100, "green"), (10, "blue")):
        ages["acme"][days] = _uploaded(as_bob, days, color=color)
        ages["globex"][days] = _uploaded(as_carol, days, color=color)

    assert pod_media_purge.call() == 3

    stored = {(org, days) for org, media in ages.items() for days, m in media.items()
              if _stored(PodMedia.objects.get(pk=m.pk), media_root)}
    assert stored == {("acme", 10), ("globex", 100), ("globex", 10)}
    assert PodMedia.objects.count() == 6


def test_a_purged_file_link_says_gone_and_the_api_shows_the_hash_without_links(as_bob, dave, media_root, stops):
    photo = _uploaded(as_bob, 200, color="red")
    pod = action(as_bob, "complete", stops[0], pod={"photos": [photo.sha256]}).json()["pod"]
    pod_media_purge.call()
    browser = client_for(dave)
    browser.force_login(dave)

    shown = browser.get(f"/api/v1/pods/{pod}/").json()["photos"][0]
    assert shown["sha256"] == photo.sha256 and shown["purged_at"] and shown["urls"] == {}
    link = sign_media(media_id=photo.pk, rendition="display", audience=f"org:{photo.org_id}")
    response = browser.get(link)
    assert response.status_code == 410 and response.json()["code"] == "media_purged"


def test_the_same_bytes_sent_again_after_the_purge_are_stored_again(as_bob, media_root):
    data = images.jpeg(32, 24, color="red")
    with time_machine.travel(timezone.now() - timedelta(days=200)):
        upload(as_bob, data)
    pod_media_purge.call()

    response = upload(as_bob, data)

    assert response.status_code == 201
    media = PodMedia.objects.get()
    assert media.purged_at is None and _stored(media, media_root)


def test_a_storage_failure_leaves_the_media_for_the_next_run(as_bob, media_root):
    photo = _uploaded(as_bob, 200, color="red")
    with mock.patch("apps.pod.retention.default_storage.delete", side_effect=OSError("bucket unreachable")):
        assert pod_media_purge.call() == 0
    photo.refresh_from_db()
    assert photo.purged_at is None

    assert pod_media_purge.call() == 1
    photo.refresh_from_db()
    assert photo.purged_at is not None and not _stored(photo, media_root)
