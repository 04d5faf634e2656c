"""Uploading photos and signatures: only real JPEG, PNG and WebP images, within limits,
stored once by content, with clean copies for browsers and the original untouched."""

from __future__ import annotations

import hashlib
import io
import os
from unittest import mock

import pytest
from PIL import Image

from apps.pod.models import PodMedia

from . import images
from .conftest import upload


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _stored(media_root, name: str) -> bytes:
    return (media_root / name).read_bytes()


class TestAccepted:
    def test_a_jpeg_photo_is_stored_with_its_hash(self, as_bob, media_root):
        data = images.jpeg()

        response = upload(as_bob, data)

        assert response.status_code == 201
        body = response.json()
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        assert body["original_format"] == "JPEG"
        assert body["created"] is True
        assert (body["width"], body["height"]) == (640, 480)

    def test_the_original_bytes_are_kept_unchanged_and_match_the_hash(self, as_bob, media_root):
        data = images.jpeg(gps=True)

        upload(as_bob, data)

        media = PodMedia.objects.get()
        stored = _stored(media_root, media.original)
        assert stored == data
        assert hashlib.sha256(stored).hexdigest() == media.sha256

    def test_the_display_copy_and_thumbnail_carry_no_exif_or_gps(self, as_bob, media_root):
        data = images.jpeg(gps=True)
        assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)  # the original has GPS

        upload(as_bob, data)

        media = PodMedia.objects.get()
        for name in (media.display, media.thumb):
            copy = _stored(media_root, name)
            assert b"Exif" not in copy and b"SERIAL-12345" not in copy and b"PhoneMaker" not in copy
            assert not Image.open(io.BytesIO(copy)).getexif()
        assert max(Image.open(io.BytesIO(_stored(media_root, media.thumb))).size) <= 320

    def test_orientation_is_applied_before_the_metadata_is_dropped(self, as_bob, media_root):
        # EXIF orientation 6: the camera held sideways; the picture shows upright.
        upload(as_bob, images.jpeg(640, 480, orientation=6))

        media = PodMedia.objects.get()
        assert Image.open(io.BytesIO(_stored(media_root, media.display))).size == (480, 640)

    def test_png_and_webp_are_accepted(self, as_bob):
        assert upload(as_bob, images.png(), kind="signature", name="s.png").status_code == 201
        assert upload(as_bob, images.webp(), name="w.webp").status_code == 201

    def test_a_signature_display_copy_stays_a_png(self, as_bob, media_root):
        upload(as_bob, images.png(), kind="signature", name="s.png")

        media = PodMedia.objects.get()
        assert media.display_content_type == "image/png"
        assert Image.open(io.BytesIO(_stored(media_root, media.display))).format == "PNG"

    def test_a_png_with_html_appended_is_served_only_as_clean_pixels(self, as_bob, media_root):
        polyglot = images.png() + b"<html><script>alert(document.cookie)</script></html>"

        response = upload(as_bob, polyglot, kind="photo", name="pod.png")

        assert response.status_code == 201
        media = PodMedia.objects.get()
        assert _stored(media_root, media.original) == polyglot  # evidence is kept as sent
        for name in (media.display, media.thumb):
            assert b"<html" not in _stored(media_root, name) and b"script" not in _stored(media_root, name)


    @pytest.mark.parametrize("name", ["../../etc/passwd.jpg", "..\\..\\x.jpg", "a\r\nb.jpg", "\u202egpj.exe",
                                      "x" * 300 + ".jpg"])
    def test_the_clients_file_name_is_never_used_for_storage(self, as_bob, media_root, name):
        response = upload(as_bob, images.jpeg(), name=name)

        assert response.status_code == 201
        media = PodMedia.objects.get()
        assert media.original.startswith(f"pod/{media.org_id}/{media.sha256[:2]}/{media.sha256}/")
        assert all(str(p).startswith(str(media_root)) for p in media_root.rglob("*"))


class TestIdempotency:
    def test_the_same_bytes_again_return_the_stored_file(self, as_bob, media_root):
        data = images.jpeg()
        first = upload(as_bob, data).json()
        files = _files(media_root)

        again = upload(as_bob, data)

        assert again.status_code == 200
        assert again.json()["id"] == first["id"] and again.json()["created"] is False
        assert PodMedia.objects.count() == 1
        assert _files(media_root) == files  # nothing new written

    def test_a_hash_that_does_not_match_the_bytes_is_refused(self, as_bob, media_root):
        data = images.jpeg()
        wrong = hashlib.sha256(data + b"x").hexdigest()

        response = upload(as_bob, data, sha256=wrong)

        assert response.status_code == 409
        assert response.json()["code"] == "hash_mismatch"
        assert response.json()["received_sha256"] == hashlib.sha256(data).hexdigest()
        assert not PodMedia.objects.exists() and _files(media_root) == []

    def test_the_device_hash_is_accepted_when_it_matches(self, as_bob):
        data = images.jpeg()

        response = upload(as_bob, data, sha256=hashlib.sha256(data).hexdigest().upper())

        assert response.status_code == 201


REFUSED = [
    pytest.param(lambda: b"", 400, "empty_file", id="zero-bytes"),
    pytest.param(lambda: b"<html><body>not a photo</body></html>", 415, "unsupported_media_type",
                 id="html-named-jpg"),
    pytest.param(lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\n", 415, "unsupported_media_type", id="pdf-named-jpg"),
    pytest.param(lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>', 415,
                 "unsupported_media_type", id="svg-named-jpg"),
    pytest.param(images.gif, 415, "unsupported_media_type", id="gif-named-jpg"),
    pytest.param(images.tiff, 415, "unsupported_media_type", id="tiff-named-jpg"),
    pytest.param(lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", 415, "unsupported_media_type",
                 id="eps-named-jpg"),
    pytest.param(lambda: images.jpeg()[:-600], 400, "invalid_image", id="truncated-jpeg"),
    pytest.param(lambda: images.noisy_png()[:50_000], 400, "invalid_image", id="truncated-png"),
    pytest.param(images.png_bomb, 413, "too_many_pixels", id="decompression-bomb"),
]


class TestRefused:
    @pytest.mark.parametrize(("make", "status", "code"), REFUSED)
    def test_a_bad_file_is_a_clear_4xx_and_leaves_nothing_behind(self, as_bob, media_root, make, status, code):
        response = upload(as_bob, make(), name="pod.jpg")

        assert response.status_code == status, response.content
        assert response.json()["code"] == code
        assert response.json()["message"]
        assert not PodMedia.objects.exists()
        assert _files(media_root) == []

    def test_eps_never_reaches_ghostscript(self, as_bob):
        with mock.patch("subprocess.Popen") as popen, mock.patch("subprocess.check_call") as check_call:
            upload(as_bob, b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")

        popen.assert_not_called()
        check_call.assert_not_called()

    def test_pillows_decompression_bomb_warning_is_an_error(self, as_bob, settings, monkeypatch):
        # 1,000 x 1,000 is above a lowered MAX_IMAGE_PIXELS (warning) but below twice it (no error).
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600_000)

        response = upload(as_bob, images.png(1000, 1000, mode="RGB"), name="p.png")

        assert response.status_code == 413
        assert response.json()["code"] == "too_many_pixels"

    def test_the_pixel_limit_is_a_setting(self, as_bob, settings):
        settings.POD_MAX_PIXELS = 100 * 100

        response = upload(as_bob, images.jpeg(200, 200))

        assert response.status_code == 413
        assert "10,000 pixels" in response.json()["message"]

    def test_an_oversized_file_is_a_413(self, as_bob, settings, media_root):
        settings.POD_MAX_UPLOAD_BYTES = 10_000
        data = images.jpeg(1200, 900) + os.urandom(20_000)

        response = upload(as_bob, data)

        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert _files(media_root) == []

    def test_an_oversized_request_is_refused_before_it_is_read(self, as_bob, settings):
        settings.POD_MAX_UPLOAD_BYTES = 10_000

        response = as_bob.generic("POST", "/api/v1/pod/media/", b"x" * 200_000,
                                  content_type="multipart/form-data; boundary=zzz")

        assert response.status_code == 413

    def test_a_request_with_too_many_files_is_a_json_400(self, as_bob):
        from django.core.files.uploadedfile import SimpleUploadedFile

        files = {f"f{i}": SimpleUploadedFile(f"{i}.jpg", b"x", "image/jpeg") for i in range(101)}

        response = as_bob.post("/api/v1/pod/media/", {"kind": "photo", **files}, format="multipart")

        assert response.status_code == 400
        assert response.json()["code"] == "malformed_request"

    def test_a_missing_file_or_kind_is_a_400_naming_the_fields(self, as_bob):
        response = as_bob.post("/api/v1/pod/media/", {"kind": "selfie"}, format="multipart")

        assert response.status_code == 400
        assert set(response.json()["fields"]) == {"file", "kind"}

    def test_a_storage_failure_leaves_no_file_behind(self, as_bob, media_root):
        with (mock.patch("apps.pod.services.PodMedia.objects.create", side_effect=RuntimeError("db down")),
              pytest.raises(RuntimeError)):
            upload(as_bob, images.jpeg())

        assert _files(media_root) == []


class TestAccess:
    def test_anonymous_uploads_are_refused(self, anonymous):
        assert upload(anonymous, images.jpeg()).status_code == 401

    def test_carol_cannot_tie_an_upload_to_acmes_stop(self, as_carol, stops):
        response = upload(as_carol, images.jpeg(), stop=stops[0].pk)

        assert response.status_code == 400
        assert response.json()["fields"]["stop"] == ["No such stop."]

    def test_the_same_bytes_in_two_organizations_are_two_files(self, as_bob, as_carol):
        data = images.jpeg()

        upload(as_bob, data)
        response = upload(as_carol, data)

        assert response.status_code == 201
        assert PodMedia.objects.count() == 2
