"""Signed, expiring media URLs.

A URL names one media file, one rendition and one audience, and expires after
POD_MEDIA_URL_TTL_S. The signature (Django's signing, keyed by SECRET_KEY and a salt
of its own) stops anyone from widening it: changing the id, the rendition or the
audience breaks it. Org audiences must also be signed in as a member of that
organization when they fetch it, so a link copied out of the console is useless to
anyone else; tracking audiences carry the tracking token the link was issued for.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "lastmile.pod.media"
RENDITIONS = ("display", "thumb", "original")


@dataclass(frozen=True)
class Grant:
    media_id: int
    rendition: str
    audience: str  # "org:<id>" or "track:<order id>"


def sign_media(*, media_id: int, rendition: str, audience: str) -> str:
    assert rendition in RENDITIONS
    token = signing.dumps([media_id, rendition, audience], salt=SALT, compress=False)
    return f"/api/v1/pod/media/{media_id}/{rendition}/?t={token}"


def read_grant(token: str, *, media_id: int, rendition: str) -> Grant | None:
    """The grant a token carries, if it is genuine, unexpired and for this file."""
    try:
        value = signing.loads(token, salt=SALT, max_age=settings.POD_MEDIA_URL_TTL_S)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not (isinstance(value, list) and len(value) == 3):
        return None
    signed_id, signed_rendition, audience = value
    if signed_id != media_id or signed_rendition != rendition or not isinstance(audience, str):
        return None
    return Grant(media_id=media_id, rendition=rendition, audience=audience)
