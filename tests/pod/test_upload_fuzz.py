"""Fuzzing the POD upload endpoint with generated and corrupted images.

Whatever the bytes, the content type or the file name, an upload is answered with a 2xx
or a 4xx with the error contract (never a 500), and a refused upload leaves no file in
media storage and no row: after every request, the files in storage are exactly those of
the stored ``PodMedia`` rows, three each. Valid images of every accepted format and mode
are still stored.

Inputs (hypothesis): valid JPEG, PNG and WebP images of random sizes and modes, then cut
short, with bytes flipped, inserted or overwritten; random bytes behind a valid magic
number; headers that declare huge dimensions (PNG, JPEG and WebP), the decompression
bomb's trick; polyglots (an image with HTML, a ZIP or a PDF around it); EXIF blocks with
odd orientations, looping and out-of-range IFD offsets and garbage; zero bytes; any
declared content type and file name. ``derandomize`` keeps CI's run the same each time;
``LASTMILE_FUZZ_EXAMPLES=500 LASTMILE_FUZZ_RANDOM=1`` explores further locally.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from django.http.multipartparser import MultiPartParser
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from apps.pod.models import PodMedia

pytestmark = [pytest.mark.django_db,
              pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")]  # corrupt EXIF, by design

EXAMPLES = int(os.environ.get("LASTMILE_FUZZ_EXAMPLES", "60"))
fuzz_settings = hypothesis_settings(
    max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("LASTMILE_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- generated images ------------------------------------------------------------------------

FORMATS = {"JPEG": ("RGB", "L", "CMYK"), "PNG": ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"),
           "WEBP": ("RGB", "RGBA")}


@st.composite
def valid_images(draw) -> bytes:
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[fmt]))
    size = (draw(st.integers(1, 96)), draw(st.integers(1, 96)))
    seed = draw(st.binary(min_size=1, max_size=64))
    image = Image.frombytes("L", size, (seed * (size[0] * size[1] // len(seed) + 1))[: size[0] * size[1]])
    image = image.convert(mode) if mode != "I;16" else image.convert("I").convert("I;16")
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": draw(st.integers(1, 95))} if fmt != "PNG" else {}))
    return out.getvalue()


def _mutated(data: bytes, draw) -> bytes:
    how = draw(st.sampled_from(["truncate", "flip", "insert", "overwrite", "delete"]))
    at = draw(st.integers(0, max(0, len(data) - 1)))
    if how == "truncate":
        return data[:at]
    if how == "flip":
        flips = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)), min_size=1, max_size=8))
        out = bytearray(data)
        for position, mask in flips:
            out[position] ^= mask
        return bytes(out)
    junk = draw(st.binary(min_size=1, max_size=64))
    if how == "insert":
        return data[:at] + junk + data[at:]
    if how == "overwrite":
        return data[:at] + junk + data[at + len(junk):]
    return data[:at] + data[at + draw(st.integers(1, 64)):]


@st.composite
def corrupted_images(draw) -> bytes:
    return _mutated(draw(valid_images()), draw)


MAGIC = [b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xdb", b"\x89PNG\r\n\x1a\n",
         b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"RIFF\x24\x00\x00\x00WEBPVP8L", b"RIFF\xff\xff\xff\xffWEBPVP8X",
         b"GIF89a", b"II*\x00", b"%PDF-1.7", b"PK\x03\x04", b"<svg"]


@st.composite
def random_bytes_with_magic(draw) -> bytes:
    return draw(st.sampled_from(MAGIC)) + draw(st.binary(max_size=512))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@st.composite
def huge_declared_dimensions(draw) -> bytes:
    """A small file whose header claims up to 2^31 x 2^31 (PNG), 65535 x 65535 (JPEG) or
    2^24 x 2^24 (WebP) pixels."""
    fmt = draw(st.sampled_from(["PNG", "JPEG", "WEBP"]))
    if fmt == "PNG":
        width, height = draw(st.integers(1, 2**31 - 1)), draw(st.integers(1, 2**31 - 1))
        depth, colour = draw(st.sampled_from([(1, 0), (8, 0), (8, 2), (8, 6), (16, 2)]))
        pixels = zlib.compress(b"\x00" * draw(st.integers(0, 4096)), 9)
        return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
                + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b""))
    if fmt == "JPEG":
        out = io.BytesIO()
        Image.new("RGB", (16, 16), "red").save(out, "JPEG")
        data = bytearray(out.getvalue())
        sof = data.index(b"\xff\xc0")
        data[sof + 5:sof + 9] = struct.pack(">HH", draw(st.integers(1, 65535)), draw(st.integers(1, 65535)))
        return bytes(data)
    out = io.BytesIO()
    Image.new("RGBA", (16, 16), "red").save(out, "WEBP", lossless=True)
    payload = out.getvalue()[12:]
    width, height = draw(st.integers(1, 2**24)), draw(st.integers(1, 2**24))
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x10\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (
        height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


@st.composite
def polyglots(draw) -> bytes:
    image = draw(valid_images())
    other = draw(st.sampled_from([
        b"<html><script>alert(document.cookie)</script></html>",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 20 + b"evil.html",
        b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    ]))
    where = draw(st.sampled_from(["after", "before", "inside"]))
    if where == "after":
        return image + other
    if where == "before":
        return other + image
    middle = len(image) // 2
    return image[:middle] + other + image[middle:]


def _tiff(entries: list[tuple[int, int, int, bytes]], next_ifd: int) -> bytes:
    """A big-endian TIFF header and one IFD: (tag, type, count, 4-byte value) entries."""
    ifd = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHI", t, ty, c) + v for t, ty, c, v in entries)
    return b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + struct.pack(">I", next_ifd)


@st.composite
def exif_oddities(draw) -> bytes:
    orientation = draw(st.one_of(st.integers(0, 9), st.integers(0, 65535)))
    entries = [(0x0112, 3, 1, struct.pack(">HH", orientation, 0))]
    if draw(st.booleans()):  # a GPS IFD pointer to anywhere, itself included
        entries.append((0x8825, 4, 1, struct.pack(">I", draw(st.integers(0, 2**32 - 1)))))
    if draw(st.booleans()):  # an entry whose data lies far outside the block
        entries.append((0x010F, 2, draw(st.integers(5, 2**32 - 1)), struct.pack(">I", draw(st.integers(0, 2**32 - 1)))))
    if draw(st.booleans()):  # a wrong type for the orientation
        entries[0] = (0x0112, draw(st.integers(0, 20)), draw(st.integers(0, 2**32 - 1)), entries[0][3])
    next_ifd = draw(st.sampled_from([0, 8, 2**32 - 1, draw(st.integers(0, 4096))]))  # 8: the IFD points to itself
    exif = _tiff(entries, next_ifd) + draw(st.binary(max_size=64))
    if draw(st.booleans()):
        exif = _mutated(exif, draw)
    out = io.BytesIO()
    Image.new("RGB", (draw(st.integers(1, 64)), draw(st.integers(1, 64))), "green").save(
        out, "JPEG", exif=b"Exif\x00\x00" + exif)
    return out.getvalue()


anything = st.one_of(
    corrupted_images(), random_bytes_with_magic(), huge_declared_dimensions(), polyglots(), exif_oddities(),
    st.just(b""), st.binary(max_size=256),
)
content_types = st.sampled_from(["image/jpeg", "image/png", "image/webp", "text/html", "application/pdf",
                                 "application/octet-stream", "image/svg+xml", "", "image/jpeg; charset=utf-8"])
names = st.one_of(st.sampled_from(["pod.jpg", "pod.png", "x.webp", "evil.html", "../../x.jpg", "a.php.jpg", "", "..",
                                   "a/", "%2e%2e/x.jpg", "x\x00.jpg", "\"; filename*=UTF-8''evil.html"]),
                  st.text(max_size=40))
# A file part whose name Django cannot make a file name of ("", "..", "a/") is not a file
# upload to Django, so the request has no file (a 400, which the first test accepts).
usable_names = names.filter(lambda name: MultiPartParser.sanitize_file_name(None, name) is not None)


# --- the invariant ---------------------------------------------------------------------------------


def _files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _referenced() -> set[str]:
    return {name for row in PodMedia.objects.values_list("original", "display", "thumb") for name in row}


def _post(client, data: bytes, *, kind: str, content_type: str, name: str):
    """The multipart body a browser would send, built by hand: Django's test client
    refuses some file names (``..``, ``a/``) that a real client can still send."""
    boundary = "fuzzBoundary7MA4YWxkTrZu0gW"
    quoted = name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")  # as the HTML spec escapes
    body = b"".join([
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'.encode(),
        f"Content-Type: {content_type or 'application/octet-stream'}\r\n\r\n".encode(), data,
        f"\r\n--{boundary}--\r\n".encode(),
    ])
    return client.generic("POST", "/api/v1/pod/media/", body, content_type=f"multipart/form-data; boundary={boundary}")


def _assert_clean_answer(response, media_root) -> None:
    assert response.status_code < 500, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body.get("code"), str) and body.get("message"), body
    else:
        assert response.status_code in (200, 201) and PodMedia.objects.filter(sha256=body["sha256"]).exists()
    # Nothing behind: every file belongs to a row, and every row has its three files.
    rows = PodMedia.objects.count()
    assert _files(media_root) == _referenced() and len(_referenced()) == 3 * rows


@fuzz_settings
@given(data=anything, kind=st.sampled_from(["photo", "signature"]), content_type=content_types, name=names)
def test_no_upload_ever_gets_a_500_or_leaves_a_file_or_row_behind(as_bob, media_root, data, kind, content_type, name):
    rows = PodMedia.objects.count()

    response = _post(as_bob, data, kind=kind, content_type=content_type, name=name)

    _assert_clean_answer(response, media_root)
    if response.status_code >= 400:
        assert PodMedia.objects.count() == rows


@fuzz_settings
@given(data=valid_images(), kind=st.sampled_from(["photo", "signature"]), content_type=content_types,
       name=usable_names)
def test_every_valid_image_is_stored_whatever_its_declared_type_and_name(as_bob, media_root, data, kind,
                                                                         content_type, name):
    response = _post(as_bob, data, kind=kind, content_type=content_type, name=name)

    assert response.status_code in (200, 201), response.content
    _assert_clean_answer(response, media_root)
