"""The proof of delivery a simulated driver captures: a photo of the parcel at the
door, the recipient's signature, their name, and the PIN they read out. Real images
(Pillow), uploaded and referenced by SHA-256 exactly as the PWA does."""


from __future__ import annotations

import hashlib
import io
import random
from typing import Any

from PIL import Image, ImageDraw


def door_photo(rng: random.Random) -> bytes:
    """A small JPEG: a parcel (brown box) in front of a door. Different every time."""
    image = Image.new("RGB", (480, 360), (rng.randint(150, 220), rng.randint(150, 220), rng.randint(150, 220)))
    draw = ImageDraw.Draw(image)
    draw.rectangle([170, 40, 310, 330], fill=(rng.randint(60, 120), 70, 50))  # the door
    x = rng.randint(120, 260)
    draw.rectangle([x, 250, x + 100, 330], fill=(181, 137, 87), outline=(120, 90, 50), width=3)  # the parcel
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def signature(rng: random.Random) -> bytes:
    """A signature-like scribble as a transparent PNG, as signature_pad exports it."""
    image = Image.new("RGBA", (400, 150), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    points = [(20 + i * 18, 75 + rng.randint(-35, 35)) for i in range(20)]
    draw.line(points, fill=(20, 30, 60, 255), width=3, joint="curve")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def needs_upload(rules: dict[str, Any]) -> tuple[int, bool]:
    """How many photos and whether a signature the rules ask for."""
    return int(rules.get("min_photos") or 0), bool(rules.get("signature"))


def pod_body(rules: dict[str, Any], *, photos: list[str], signature_sha: str | None, recipient: str,
             pin: str, point: tuple[float, float] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"photos": photos}
    if signature_sha:
        body["signature"] = signature_sha
    if rules.get("recipient_name") or signature_sha:
        body["recipient_name"] = recipient
    if rules.get("pin"):
        body["pin"] = pin
    if rules.get("barcode"):
        body["barcode"] = "SIM-" + hashlib.sha1(recipient.encode(), usedforsecurity=False).hexdigest()[:10].upper()
    if rules.get("min_age"):
        body["age_verified"] = True
    if point is not None:
        body["lat"], body["lng"], body["accuracy_m"] = round(point[0], 6), round(point[1], 6), 8.0
    return body
