"""Every API error is JSON ``{code, message, fields?}`` (apps/common/errors.py, middleware.py,
views.py), whichever layer refuses the request: middleware, URL routing, parsing, the
contracts in apps/dispatch/inputs.py or a service."""

from __future__ import annotations

import json

import pytest

from apps.dispatch.models import Hub, Vehicle
from apps.events.models import Event

HUBS = "/api/v1/hubs/"
VEHICLES = "/api/v1/vehicles/"


def hub_body(**overrides) -> dict:
    body = {"name": "Depot", "code": "D1", "timezone": "Europe/Berlin", "address_line1": "Str. 1",
            "city": "Berlin", "country": "DE", "lat": 52.5, "lng": 13.4}
    body.update(overrides)
    return body


def vehicle_body(**overrides) -> dict:
    body = {"name": "Van", "capacity_weight_kg": 800, "capacity_volume_l": 6000, "capacity_parcels": 120}
    body.update(overrides)
    return body


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.content.decode()
    return body


# --- the body cannot be read ----------------------------------------------------------


def test_malformed_json_is_a_malformed_request(as_dave):
    response = as_dave.post(HUBS, '{"name": "Depot", ', content_type="application/json")

    assert_error(response, 400, "malformed_request")
    assert Hub.objects.count() == 0


def test_an_empty_json_body_is_a_validation_error(as_dave):
    response = as_dave.post(HUBS, "", content_type="application/json")

    body = assert_error(response, 400, "validation_error")
    assert "name" in body["fields"]


def test_a_json_array_where_an_object_is_expected_is_a_validation_error(as_dave):
    response = as_dave.post(HUBS, [hub_body()], format="json")

    body = assert_error(response, 400, "validation_error")
    assert body["fields"] == {"non_field_errors": ["Expected a JSON object."]}
    assert Hub.objects.count() == 0


@pytest.mark.parametrize("payload", ["42", '"a string"', "null", "true"])
def test_a_json_scalar_where_an_object_is_expected_is_a_validation_error(as_dave, payload):
    response = as_dave.post(HUBS, payload, content_type="application/json")

    assert_error(response, 400, "validation_error")


def test_form_encoded_bodies_are_an_unsupported_media_type(as_dave):
    response = as_dave.post(HUBS, "name=Depot&code=D1", content_type="application/x-www-form-urlencoded")

    assert_error(response, 415, "unsupported_media_type")
    assert Hub.objects.count() == 0


def test_multipart_bodies_are_an_unsupported_media_type(as_dave):
    response = as_dave.post(HUBS, {"name": "Depot"}, format="multipart")

    assert_error(response, 415, "unsupported_media_type")


# --- the body is too big --------------------------------------------------------------


def test_an_oversized_body_is_refused_with_413_before_it_is_read(as_dave, settings):
    settings.API_MAX_BODY_BYTES = 512
    body = hub_body(address_line1="x" * 600)

    response = as_dave.post(HUBS, body, format="json")

    error = assert_error(response, 413, "payload_too_large")
    assert "512" in error["message"]
    assert Hub.objects.count() == 0
    assert not Event.objects.exists()


def test_a_body_at_the_limit_is_accepted(as_dave, settings):
    payload = json.dumps(hub_body())
    settings.API_MAX_BODY_BYTES = len(payload.encode())

    response = as_dave.post(HUBS, payload, content_type="application/json")

    assert response.status_code == 201


def test_the_size_check_runs_before_authentication(anonymous, db, settings):
    settings.API_MAX_BODY_BYTES = 10

    assert_error(anonymous.post(HUBS, hub_body(), format="json"), 413, "payload_too_large")


def test_a_non_numeric_content_length_is_a_malformed_request(as_dave):
    response = as_dave.generic("POST", HUBS, json.dumps(hub_body()), content_type="application/json",
                               CONTENT_LENGTH="lots")

    assert_error(response, 400, "malformed_request")
    assert Hub.objects.count() == 0


def test_the_default_limit_is_five_megabytes(settings):
    assert settings.API_MAX_BODY_BYTES == 5 * 1024 * 1024


# --- the body does not fit the contract --------------------------------------------------


def test_a_string_where_an_integer_is_expected_names_the_field(as_dave):
    response = as_dave.post(VEHICLES, vehicle_body(capacity_parcels="12"), format="json")

    body = assert_error(response, 400, "validation_error")
    assert set(body["fields"]) == {"capacity_parcels"}
    assert body["fields"]["capacity_parcels"] == ["Input should be a valid integer"]
    assert Vehicle.objects.count() == 0


def test_an_unknown_field_is_refused_not_dropped(as_dave):
    response = as_dave.post(VEHICLES, vehicle_body(capacity_pallets=4), format="json")

    body = assert_error(response, 400, "validation_error")
    assert body["fields"] == {"capacity_pallets": ["Extra inputs are not permitted"]}
    assert Vehicle.objects.count() == 0


def test_every_invalid_field_is_reported_at_once(as_dave):
    response = as_dave.post(HUBS, hub_body(lat=91, lng=-181, timezone="Mars/Olympus", colour="red"), format="json")

    body = assert_error(response, 400, "validation_error")
    assert set(body["fields"]) == {"lat", "lng", "timezone", "colour"}


def test_nested_errors_carry_a_dotted_path(as_dave):
    response = as_dave.post(HUBS, hub_body(opening_hours={"mon": [["06:00", "later"]]}), format="json")

    body = assert_error(response, 400, "validation_error")
    assert list(body["fields"]) == ["opening_hours.mon.0.1"]


# --- routing ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/hubs/abc/", "/api/v2/hubs/", "/api/"])
def test_an_unknown_api_route_is_a_json_404(as_dave, path):
    assert_error(as_dave.get(path), 404, "not_found")


def test_an_unknown_api_route_is_a_json_404_for_anonymous_callers_too(anonymous, db):
    assert_error(anonymous.get("/api/v1/nope/"), 404, "not_found")


def test_an_unknown_non_api_route_is_not_json(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_an_unknown_object_is_a_json_404(as_dave, acme):
    assert_error(as_dave.get(f"{HUBS}999999/"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("delete", "/api/v1/hubs/{hub}/"), ("patch", "/api/v1/hubs/{hub}/"), ("put", "/api/v1/hubs/"),
     ("delete", "/api/v1/hubs/"), ("put", "/api/v1/drivers/{driver}/"), ("get", "/api/v1/drivers/{driver}/duty/")],
)
def test_a_method_the_endpoint_does_not_offer_is_a_405(as_dave, bob, acme_hub, method, path):
    url = path.format(hub=acme_hub.id, driver=bob.id)

    response = getattr(as_dave, method)(url, {}, format="json") if method != "get" else as_dave.get(url)

    assert_error(response, 405, "method_not_allowed")


# --- the service refuses ------------------------------------------------------------------


def test_a_domain_conflict_carries_its_details(as_dave, acme_hub):
    response = as_dave.post(HUBS, hub_body(code=acme_hub.code), format="json")

    body = assert_error(response, 409, "duplicate")
    assert body["field"] == "code"


# --- the shape, everywhere --------------------------------------------------------------


def test_every_error_body_has_a_code_and_a_message(as_dave, anonymous, as_bob, acme_hub, settings):
    settings.API_MAX_BODY_BYTES = 4096
    responses = [
        as_dave.post(HUBS, "{", content_type="application/json"),                      # 400 malformed
        as_dave.post(HUBS, [], format="json"),                                          # 400 validation
        anonymous.get(HUBS),                                                            # 401
        as_bob.get(HUBS),                                                               # 403
        as_dave.get("/api/v1/nope/"),                                                   # 404 routing
        as_dave.get(f"{HUBS}999999/"),                                                  # 404 object
        as_dave.delete(f"{HUBS}{acme_hub.id}/"),                                        # 405
        as_dave.post(HUBS, hub_body(code=acme_hub.code), format="json"),                # 409
        as_dave.post(HUBS, hub_body(name="x" * 5000), format="json"),                   # 413
        as_dave.post(HUBS, "a=b", content_type="application/x-www-form-urlencoded"),    # 415
    ]

    assert [r.status_code for r in responses] == [400, 400, 401, 403, 404, 404, 405, 409, 413, 415]
    for response in responses:
        body = response.json()
        assert isinstance(body["code"], str) and body["code"]
        assert isinstance(body["message"], str) and body["message"]
    assert Hub.objects.count() == 1


def test_an_unexpected_error_is_a_json_500_without_a_traceback(as_dave, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("apps.dispatch.services.fleet.hub_create", explode)
    as_dave.raise_request_exception = False

    response = as_dave.post(HUBS, hub_body(), format="json")

    assert_error(response, 500, "server_error")
    assert "secret internals" not in response.content.decode()
