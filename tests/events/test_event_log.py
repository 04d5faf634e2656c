"""The event log: append-only, per-organization monotonic sequences, ?after= replay."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import OrderIn
from apps.dispatch.services.orders import order_create
from apps.events.models import Event, OrgEventCounter
from apps.events.services import NewEvent, event_record, events_record
from tests.factories import order_payload

URL = "/api/v1/events/"


def _record(org, n=1, type="order.created"):
    with transaction.atomic():
        return events_record(org=org, actor="system",
                             events=[NewEvent(type, "order", i) for i in range(n)])


class TestSequence:
    def test_sequences_are_consecutive_within_an_organization(self, acme):
        _record(acme, 3)
        _record(acme, 2)

        assert list(Event.objects.filter(org=acme).values_list("sequence", flat=True)) == [1, 2, 3, 4, 5]

    def test_each_organization_counts_on_its_own(self, acme, globex):
        _record(acme, 3)
        _record(globex, 1)

        assert list(Event.objects.filter(org=globex).values_list("sequence", flat=True)) == [1]

    def test_a_rolled_back_change_leaves_no_event_and_no_gap(self, acme):
        _record(acme, 1)
        with pytest.raises(RuntimeError), transaction.atomic():
            events_record(org=acme, actor="system", events=[NewEvent("order.created", "order", 9)])
            raise RuntimeError("the change failed after recording its event")
        _record(acme, 1)

        assert list(Event.objects.filter(org=acme).values_list("sequence", flat=True)) == [1, 2]
        assert OrgEventCounter.objects.get(org=acme).last == 2

    @pytest.mark.django_db(transaction=True)
    def test_an_event_cannot_be_recorded_outside_a_transaction(self, acme):
        with pytest.raises(RuntimeError, match="inside the transaction"):
            events_record(org=acme, actor="system", events=[NewEvent("order.created", "order", 1)])

    def test_an_unknown_event_type_is_a_programming_error(self, acme):
        with pytest.raises(ValueError, match="unknown event types"), transaction.atomic():
            event_record(org=acme, actor="system", type="order.teleported", subject_type="order", subject_id=1)

    def test_a_failed_service_call_records_nothing(self, acme):
        from apps.common.exceptions import ValidationFailed

        with pytest.raises(ValidationFailed):
            order_create(actor=system_actor(acme), data=OrderIn.model_validate(order_payload(hub=999)))

        assert not Event.objects.exists()


class TestApi:
    def test_it_pages_with_after_and_reports_the_newest_sequence(self, as_dave, acme):
        _record(acme, 5)

        first = as_dave.get(URL, {"limit": 2}).json()
        rest = as_dave.get(URL, {"after": first["next_after"], "limit": 10}).json()

        assert [e["sequence"] for e in first["results"]] == [1, 2]
        assert (first["has_more"], first["next_after"], first["last_sequence"]) == (True, 2, 5)
        assert [e["sequence"] for e in rest["results"]] == [3, 4, 5]
        assert rest["has_more"] is False

    def test_a_client_that_is_up_to_date_gets_nothing_and_keeps_its_place(self, as_dave, acme):
        _record(acme, 2)

        body = as_dave.get(URL, {"after": 2}).json()

        assert (body["results"], body["next_after"], body["has_more"]) == ([], 2, False)

    def test_it_filters_by_type_and_subject(self, as_dave, acme):
        ids = {}
        for n in range(2):
            ids[n] = as_dave.post("/api/v1/orders/", order_payload(external_id=f"E-{n}"), format="json").json()["id"]

        by_type = as_dave.get(URL, {"type": "order.created"}).json()["results"]
        by_subject = as_dave.get(URL, {"subject_type": "order", "subject_id": ids[1]}).json()["results"]

        assert len(by_type) == 2
        assert [e["subject_id"] for e in by_subject] == [str(ids[1])]
        assert by_subject[0]["payload"]["external_id"] == "E-1"

    @pytest.mark.parametrize("params", [{"after": "-1"}, {"after": "abc"}, {"limit": "many"}])
    def test_bad_paging_parameters_are_a_400(self, as_dave, params):
        response = as_dave.get(URL, params)

        assert response.status_code == 400
        assert set(response.json()["fields"]) == set(params)

    def test_the_page_size_is_capped(self, as_dave, acme):
        _record(acme, 3)

        assert len(as_dave.get(URL, {"limit": 100000}).json()["results"]) == 3

    def test_the_log_cannot_be_written_through_the_api(self, as_dave):
        assert as_dave.post(URL, {"type": "order.created"}, format="json").status_code == 405
