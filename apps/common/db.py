"""Transactions PostgreSQL may abort to break a lock cycle, run again."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from django.db import OperationalError, transaction

logger = logging.getLogger(__name__)

# deadlock_detected, serialization_failure: the transaction was rolled back whole and
# nothing it did is left, so running it again from the start is safe.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def is_retryable(exc: BaseException) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) in RETRYABLE_SQLSTATES


def atomic_with_retry[T](fn: Callable[[], T], *, attempts: int = 3) -> T:
    """Run ``fn`` in a transaction of its own; if PostgreSQL picks it as a deadlock
    victim (or a serialization failure), wait a moment and run it again.

    Only for work that reads everything it decides on inside the transaction. Inside
    an outer transaction there is nothing to retry (the outer one is aborted too), so
    the error is raised at once."""
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return fn()
        except OperationalError as exc:
            if attempt == attempts or not is_retryable(exc) or transaction.get_connection().in_atomic_block:
                raise
            logger.warning("transaction aborted by the database (%s); attempt %d of %d",
                           getattr(exc.__cause__, "sqlstate", "?"), attempt + 1, attempts)
            time.sleep(random.uniform(0.005, 0.05) * attempt)  # noqa: S311 (jitter, not a secret)
    raise AssertionError("unreachable")
