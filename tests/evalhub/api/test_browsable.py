"""The browsable API (DRF's HTML pages) renders every readable endpoint, forms included."""

import pytest

MANAGER_PAGES = [
    "/api/",
    "/api/datasets/",
    "/api/datasets/{dataset}/",
    "/api/runs/",
    "/api/runs/{run}/",
    "/api/systems/",
    "/api/systems/{system}/",
    "/api/studies/",
    "/api/studies/{study}/",
    "/api/studies/{study}/status/",
    "/api/studies/{study}/raters/",
    "/api/comparisons/",
    "/api/comparisons/{comparison}/",
    "/api/judgments/",
    "/api/judgments/{judgment}/",
]
RATER_PAGES = [
    "/api/assignments/",
    "/api/assignments/{theirs}/",
    "/api/assignments/{theirs}/judgment/",
]


def _ids(world) -> dict[str, object]:
    run = world.study.run
    return {
        "dataset": run.dataset_id,
        "run": run.id,
        "system": world.base.id,
        "study": world.study.id,
        "comparison": world.comparison.id,
        "judgment": world.judgment.id,
        "theirs": world.theirs.token,
    }


@pytest.mark.parametrize("path", MANAGER_PAGES)
def test_manager_pages_render_as_html(world, login, path):
    response = login(world.manager).get(path.format(**_ids(world)), HTTP_ACCEPT="text/html")
    # The POST-only study actions answer 405 to a GET, in HTML with their form.
    assert response.status_code in (200, 405)
    assert response["Content-Type"].startswith("text/html")
    assert b"<form" in response.content


@pytest.mark.parametrize("path", RATER_PAGES)
def test_rater_pages_render_as_html(world, login, path):
    response = login(world.other_expert).get(path.format(**_ids(world)), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_study_create_form_offers_the_create_fields_as_json(world, login):
    """The API reads JSON only, so the page's form is a JSON body with every field to fill."""
    html = login(world.manager).get("/api/studies/", HTTP_ACCEPT="text/html").content.decode()
    assert '<option value="application/json" selected>' in html
    assert "multipart/form-data" not in html
    for field in ("name", "systems", "raters", "overlap", "show_reference"):
        assert f"&quot;{field}&quot;:" in html
