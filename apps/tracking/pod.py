"""The one thing the tracking page needs from proof of delivery: a display copy.

The POD app (``apps/pod``, built separately) provides it by defining::

    # apps/pod/selectors.py
    def pod_display_url(*, order: Order) -> str | None:
        '''A URL the customer's browser may load (signed, expiring) showing the proof of
        delivery fit for the recipient (photo, with faces and other addresses not in it,
        or the signature), or None if there is none.'''

Until it does, or when it returns None, the page simply shows no proof of delivery.
This module is the only place the tracking app touches the POD app.
"""

from __future__ import annotations

import logging

from apps.dispatch.models import Order

logger = logging.getLogger(__name__)


def pod_display_url(*, order: Order) -> str | None:
    try:
        from apps.pod.selectors import pod_display_url as provider  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        url = provider(order=order)
    except Exception:  # the tracking page must render even if POD storage is unavailable
        logger.warning("POD display copy of order %s unavailable", order.pk, exc_info=True)
        return None
    return url if isinstance(url, str) and url else None
