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
    "/api/review/studies/{id}/",
    "/api/review/studies/{id}/{token}/",
    "/api/review/studies/{id}/{token}/final-call/",
    "/api/preference-sets/",
    "/api/preference-sets/{id}/",
    "/api/preference-sets/{id}/download/",
    "/api/judges/",
    "/api/judges/{id}/",
    "/api/judge-runs/",
    "/api/judge-runs/{id}/",
    "/api/studies/{id}/judge/",
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


def _schema(world, login) -> dict:
    return login(world.manager).get("/api/schema/?format=json").json()


def _resolve(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_every_request_body_is_json_but_the_dataset_upload_which_is_multipart(world, login):
    """A generated client offered form, multipart and JSON for one body sent a mix."""
    schema = _schema(world, login)
    bodies = {
        (method, path): list(operation["requestBody"]["content"])
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    }
    assert bodies.pop(("post", "/api/datasets/")) == ["multipart/form-data"]
    assert ("post", "/api/runs/") in bodies and ("post", "/api/token/") in bodies
    assert set(map(tuple, bodies.values())) == {("application/json",)}


def test_request_bodies_have_their_own_components_without_read_only_fields(world, login):
    schema = _schema(world, login)
    for item in schema["paths"].values():
        for operation in item.values():
            if "requestBody" not in operation:
                continue
            for content in operation["requestBody"]["content"].values():
                ref = content["schema"]["$ref"]
                assert ref.endswith("Request"), ref
                properties = _resolve(schema, ref)["properties"]
                read_only = [name for name, p in properties.items() if p.get("readOnly")]
                assert read_only == [], (ref, read_only)


def test_the_token_endpoint_takes_credentials_and_answers_the_token_without_a_login(world, login):
    schema = _schema(world, login)
    operation = schema["paths"]["/api/token/"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(_resolve(schema, request)["required"]) == {"username", "password"}
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert _resolve(schema, answer)["required"] == ["token"]
    # No security requirement, here or for the whole API: callable without a session or token.
    assert "security" not in operation and "security" not in schema
