from apps.accounts.actor import system_actor
from apps.accounts.models import Organization
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Hub, Order, Route
from apps.dispatch.services.routes import route_create, route_publish
from apps.events.models import Event, OrgEventCounter
from tests.factories import OrderFactory


def test_an_organization_with_routes_can_be_deleted_whole(acme, acme_hub, bob, acme_van, globex):
    actor = system_actor(acme)
    route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
        hub=acme_hub.pk, date="2026-11-23", driver=bob.pk, vehicle=acme_van.pk, orders=[OrderFactory(org=acme).pk])))

    acme.delete()

    assert list(Organization.objects.all()) == [globex]
    assert not Route.objects.exists() and not Order.objects.exists() and not Hub.objects.exists()
    assert not Event.objects.exists() and OrgEventCounter.objects.filter(org=globex).exists()


def test_a_hub_with_routes_cannot_be_deleted_on_its_own(acme, acme_hub):
    import pytest
    from django.db.models import RestrictedError

    route_create(actor=system_actor(acme), data=RouteIn(hub=acme_hub.pk, date="2026-11-23"))

    with pytest.raises(RestrictedError):
        acme_hub.delete()
