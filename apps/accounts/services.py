from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.common.exceptions import ValidationFailed

from .models import ApiClient, Membership, Organization, Role
from .roles import API_CLIENT_SCOPES, SHIPPER_KEY_SCOPES

KEY_PREFIX = "lm_"
# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def organization_create(*, name: str, slug: str | None = None, timezone_name: str = "UTC") -> Organization:
    from apps.events.models import OrgEventCounter

    org = Organization.objects.create(name=name, slug=slug or slugify(name)[:80], timezone=timezone_name)
    OrgEventCounter.objects.create(org=org, last=0)
    return org


@transaction.atomic
def member_create(*, org: Organization, username: str, password: str, role: str, email: str = "",
                  first_name: str = "", last_name: str = "") -> Membership:
    if role not in Role.values:
        raise ValidationFailed({"role": [f"Must be one of {', '.join(Role.values)}."]})
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationFailed({"username": ["This username is taken."]})
    try:
        validate_password(password, User(username=username, email=email, first_name=first_name, last_name=last_name))
    except DjangoValidationError as exc:
        raise ValidationFailed({"password": list(exc.messages)}) from None
    user = User.objects.create_user(
        username=username, password=password, email=email, first_name=first_name, last_name=last_name,
        # Admins and dispatchers use the back-office admin; it is scoped to their organization.
        is_staff=role in (Role.ADMIN, Role.DISPATCHER),
    )
    return Membership.objects.create(user=user, org=org, role=role)


def api_client_create(
    *, org: Organization, name: str, scopes: list[str], created_by_id: int | None = None, order_source: str = ""
) -> tuple[ApiClient, str]:
    """Create a client and return it with its plaintext key, which is never retrievable again."""
    unknown = sorted(set(scopes) - API_CLIENT_SCOPES)
    errors: dict[str, list[str]] = {}
    if unknown:
        errors["scopes"] = [f"Unknown or not grantable: {', '.join(unknown)}."]
    if not scopes:
        errors["scopes"] = ["Grant at least one scope."]
    if not name.strip():
        errors["name"] = ["This field may not be blank."]
    if order_source:
        if not re.fullmatch(r"[A-Za-z0-9_.:\-]{1,64}", order_source):
            errors["order_source"] = ["Letters, digits and _ . : - only, at most 64."]
        if wider := sorted(set(scopes) - SHIPPER_KEY_SCOPES):
            errors["scopes"] = [f"A key bound to an order source can hold only orders, webhooks and reports scopes, "
                                f"not {', '.join(wider)}."]
    if errors:
        raise ValidationFailed(errors)
    for _ in range(5):
        prefix = secrets.token_hex(6)
        key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                client = ApiClient.objects.create(
                    org=org, name=name.strip(), prefix=prefix, key_hash=_hash_key(key), scopes=sorted(set(scopes)),
                    created_by_id=created_by_id, order_source=order_source,
                )
            return client, key
        except IntegrityError:
            continue  # the prefix (a unique lookup key) was taken: draw another
    raise RuntimeError("could not draw a free API key prefix in 5 attempts")


def api_client_revoke(*, client: ApiClient) -> ApiClient:
    if client.revoked_at is None:
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
    return client


def api_client_authenticate(*, key: str) -> ApiClient | None:
    """Return the active client for a key, or None. Compares hashes in constant time."""
    if not key.startswith(KEY_PREFIX) or key.count("_") < 2:
        return None
    prefix = key[len(KEY_PREFIX):].split("_", 1)[0]
    client = ApiClient.objects.select_related("org").filter(prefix=prefix).first()
    if client is None or client.revoked_at is not None:
        return None
    if not secrets.compare_digest(client.key_hash, _hash_key(key)):
        return None
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
    return client


@transaction.atomic
def member_remove(*, membership: Membership) -> None:
    """Take a person out of their organization. The account stays (history points at
    it) but can no longer log in, and their open live connections are closed."""
    from apps.realtime.groups import user_group
    from apps.realtime.publisher import send_control

    user = membership.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    membership.delete()
    transaction.on_commit(lambda: send_control(user_group(user.pk), {
        "action": "revoke", "message": "You were removed from the organization."}))
