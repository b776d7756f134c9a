"""The OpenAPI schema and the Swagger UI docs page, served without any CDN."""

import re

from django.contrib.staticfiles import finders
from drf_spectacular.validation import validate_schema

EXPECTED_PATHS = {
    "/api/token/",
    "/api/datasets/",
    "/api/datasets/{id}/",
    "/api/runs/",
    "/api/runs/{id}/",
    "/api/systems/",
    "/api/systems/{id}/",
    "/api/comparisons/",
    "/api/comparisons/{id}/",
    "/api/judgments/",
    "/api/judgments/{id}/",
    "/api/assignments/",
    "/api/assignments/{token}/",
    "/api/assignments/{token}/judgment/",
    "/api/studies/",
    "/api/studies/{id}/",
    "/api/studies/{id}/status/",
    "/api/studies/{id}/raters/",
    "/api/studies/{id}/report/",
}


def test_schema_is_valid_openapi_with_every_endpoint(world, login):
    response = login(world.expert).get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # drf-spectacular's bundled OpenAPI 3 JSON Schema
    assert set(schema["paths"]) >= EXPECTED_PATHS
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_docs_page_loads_swagger_ui_from_local_static_files(world, login):
    response = login(world.expert).get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "SwaggerUIBundle" in html
    assert not re.search(r"https?://", html), "the docs page must not reference any external URL"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a local static file"


def test_docs_page_points_at_the_local_schema(world, login):
    html = login(world.manager).get("/api/docs/").content.decode()
    assert '"/api/schema/"' in html
