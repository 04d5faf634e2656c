"""A transaction PostgreSQL aborts to break a deadlock is run again, once it is safe to."""

from __future__ import annotations

import psycopg.errors
import pytest
from django.db import OperationalError, transaction

from apps.common.db import atomic_with_retry


def _aborted(sqlstate_error: type[Exception]) -> OperationalError:
    # What Django raises: its own error wrapping the driver's, which carries the SQLSTATE.
    try:
        raise OperationalError("aborted") from sqlstate_error("aborted by the database")
    except OperationalError as exc:
        return exc


def _failing_first(times: int, error: type[Exception]):
    calls = []

    def work():
        calls.append(transaction.get_connection().in_atomic_block)
        if len(calls) <= times:
            raise _aborted(error)
        return "done"

    return work, calls


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_victim_is_run_again_in_a_fresh_transaction():
    work, calls = _failing_first(1, psycopg.errors.DeadlockDetected)

    assert atomic_with_retry(work) == "done"
    assert calls == [True, True]


@pytest.mark.django_db(transaction=True)
def test_a_serialization_failure_is_run_again_too():
    work, calls = _failing_first(2, psycopg.errors.SerializationFailure)

    assert atomic_with_retry(work) == "done"
    assert len(calls) == 3


@pytest.mark.django_db(transaction=True)
def test_it_gives_up_after_the_last_attempt():
    work, calls = _failing_first(5, psycopg.errors.DeadlockDetected)

    with pytest.raises(OperationalError):
        atomic_with_retry(work, attempts=3)
    assert len(calls) == 3


@pytest.mark.django_db(transaction=True)
def test_other_database_errors_are_not_retried():
    work, calls = _failing_first(1, psycopg.errors.QueryCanceled)

    with pytest.raises(OperationalError):
        atomic_with_retry(work)
    assert len(calls) == 1


@pytest.mark.django_db(transaction=True)
def test_inside_an_outer_transaction_it_raises_at_once():
    work, calls = _failing_first(1, psycopg.errors.DeadlockDetected)

    with pytest.raises(OperationalError), transaction.atomic():
        atomic_with_retry(work)
    assert len(calls) == 1
