"""The OpenAPI schema and browsable docs are served, with no third-party CDN."""

import re

import pytest


def test_the_schema_is_openapi_3_1_with_every_resource(client, db):
    response = client.get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    paths = set(schema["paths"])
    for resource in ("hubs", "vehicles", "drivers", "orders", "routes", "stops", "events", "api-clients"):
        assert f"/api/v1/{resource}/" in paths
    assert "/api/v1/orders/bulk/" in paths
    assert "ApiKey" in schema["components"]["securitySchemes"]


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_their_assets_from_this_server(client, db, url):
    response = client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, "the page references its assets"
    external = [a for a in assets if a.startswith(("http:", "https:", "//"))]
    assert external == []
