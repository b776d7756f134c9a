"""Model outputs (and prompts, references, rater comments and better answers) that try to be
markup, links, right-to-left tricks, spreadsheet formulas or a 1 MB line stay inert text on every
page, every htmx fragment, the API and every export."""

import json

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalhub.models import Assignment, Comparison, Judgment, Study, StudyStatus
from evalhub.reports.build import report_build
from evalhub.reports.disagreements import PROMPT_EXCERPT_CHARS
from evalhub.reports.render import render_html
from evalhub.selectors.outputs import evaluation_prompts
from evalhub.services.judgments import judgment_submit
from evalhub.services.prompts import prompts_create_from_split
from evalhub.services.studies import study_create, study_set_status
from evalhub.services.systems import system_get_or_create
from tests.factories import (
    ExampleFactory,
    ExpertFactory,
    FineTuneRunFactory,
    ManagerFactory,
    OutputFactory,
)
from tests.hardening.hostile import (
    FORMULA_COMMENTS,
    HOSTILE_MARKDOWN,
    HUGE_LINE,
    PAYLOADS,
    assert_csv_inert,
    assert_inert_html,
    strings_in,
)
from trainer.models import Split

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
SHORT = {k: v for k, v in PAYLOADS.items() if k != "huge"}
PAGE_COMMENT = PAYLOADS["breakout"] + " " + PAYLOADS["rtl"]
# A rater's better answer: it closes the textarea it is edited in, then tries markup.
PAGE_CORRECTION = PAYLOADS["breakout"] + "\n" + PAYLOADS["handlers"]
# The guidelines are rendered Markdown: their refused link and raw HTML show as text.
GUIDELINES_TEXT = [
    "[click me](javascript:alert('pwn-md'))",
    '<a href="javascript:alert(1)">pwn-link',
]


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.EVALHUB_RATING_SUBMITS_PER_MINUTE = 10_000
    cache.clear()


def _prompt(i: int, payload: str) -> str:
    return f"Question {i}: {payload}" if payload != HUGE_LINE else f"Question {i}: long answer"


@pytest.fixture
def hostile(manager):
    """A run whose prompts, references and outputs are all hostile, a study on it, and raters
    whose comments, flag reasons and better answers are too. ``expert`` has judged half of
    their items."""
    run = FineTuneRunFactory(name="hostile-run")
    payloads = list(PAYLOADS.values())
    for i, payload in enumerate(payloads):
        reference = f"Reference {i}: {payload}" if payload != HUGE_LINE else "short reference"
        ExampleFactory(
            dataset=run.dataset,
            split=Split.TEST,
            messages=[
                {"role": "system", "content": SHORT["script"]},
                {"role": "user", "content": _prompt(i, payload)},
                {"role": "assistant", "content": reference},
            ],
        )
    prompts_create_from_split(dataset=run.dataset)
    base = system_get_or_create(run=run, kind="base")
    adapter = system_get_or_create(run=run, kind="adapter")
    for i, prompt in enumerate(evaluation_prompts(dataset=run.dataset)):
        payload = payloads[i]
        short = payload if payload != HUGE_LINE else "a short answer"
        OutputFactory(system=base, prompt=prompt, text=short, metrics={"rouge1": 0.9 - i / 10})
        OutputFactory(
            system=adapter, prompt=prompt, text=f"Adapter: {payload}", metrics={"rouge1": i / 10}
        )
    expert, other = ExpertFactory(), ExpertFactory()
    study = study_create(
        name="Hostile study",
        systems=[base, adapter],
        raters=[expert, other],
        overlap=2,
        run=run,
        criteria=["correctness"],
        guidelines=SHORT["markdown"],
        show_reference=True,
        seed=3,
    )
    study_set_status(study=study, status=StudyStatus.OPEN)
    for n, a in enumerate(Assignment.objects.filter(rater=other).order_by("position")):
        comment = FORMULA_COMMENTS[n % len(FORMULA_COMMENTS)]
        judgment_submit(
            assignment=a,
            rater=other,
            choice="ab"[n % 2],
            criterion_scores={"correctness": {"a": 1 + n % 5, "b": 5 - n % 5}},
            comment=comment,
            correction=FORMULA_COMMENTS[(n + 2) % len(FORMULA_COMMENTS)],
            flagged=True,
            flag_reason=FORMULA_COMMENTS[(n + 1) % len(FORMULA_COMMENTS)].strip() or "x",
        )
    mine = list(Assignment.objects.filter(rater=expert).order_by("position"))
    for a in mine[: len(mine) // 2]:
        judgment_submit(
            assignment=a,
            rater=expert,
            choice="b",
            comment=PAGE_COMMENT,
            correction=PAGE_CORRECTION,
            flagged=True,
            flag_reason=PAYLOADS["script"],
        )
    return {
        "run": run,
        "study": study,
        "expert": expert,
        "manager": manager,
        "mine": mine,
        "manager_client": _client(manager),
        "expert_client": _client(expert),
    }


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _html(response, status: int = 200) -> str:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def _shown(assignment: Assignment) -> list[str]:
    comparison = assignment.comparison
    return [comparison.output_a.text, comparison.output_b.text, comparison.prompt.text]


def test_every_rating_page_shows_both_outputs_prompt_and_reference_as_text(hostile):
    client = hostile["expert_client"]
    for assignment in hostile["mine"]:
        html = _html(client.get(reverse("rate_item", args=[assignment.token])))
        shown = [*_shown(assignment), assignment.comparison.prompt.reference, *GUIDELINES_TEXT]
        if hasattr(assignment, "judgment"):
            shown += [PAGE_COMMENT, PAGE_CORRECTION]  # prefilled for revising, in textareas
        assert_inert_html(html, shown=shown)


def test_the_htmx_fragments_after_a_submit_and_a_refusal_stay_inert(hostile):
    client = hostile["expert_client"]
    pending = [a for a in hostile["mine"] if not hasattr(a, "judgment")]
    url = reverse("rate_item", args=[pending[0].token])
    sent = {"comment": PAGE_COMMENT, "correction": PAGE_CORRECTION, "flag_reason": "x"}
    refused = client.post(url, sent, **HTMX)
    assert_inert_html(
        _html(refused, 422), shown=[*_shown(pending[0]), PAGE_COMMENT, PAGE_CORRECTION]
    )
    fragment = client.post(url, {"choice": "a", "comment": PAYLOADS["handlers"]}, **HTMX)
    following = Assignment.objects.get(token=fragment["HX-Push-Url"].rstrip("/").split("/")[-1])
    assert_inert_html(_html(fragment), shown=_shown(following))


def test_hostile_markdown_guidelines_render_as_text_and_safe_links_only(hostile):
    Study.objects.filter(pk=hostile["study"].pk).update(guidelines=HOSTILE_MARKDOWN)
    client = hostile["expert_client"]
    pending = [a for a in hostile["mine"] if not hasattr(a, "judgment")]
    url = reverse("rate_item", args=[pending[0].token])
    shown = [
        "Rules pwn-heading",
        "[run](javascript:alert('pwn-js'))",
        "<img src=x onerror=alert('pwn-img')>",
        "pwn-alt",
        '<a href="javascript:alert(1)">pwn-link</a>',
        '<script>alert("pwn-script")</script>',
    ]
    for response in (
        client.get(url),
        client.post(url, {"comment": "no choice"}, **HTMX),  # the refused item's fragment
    ):
        status = 200 if response.request["REQUEST_METHOD"] == "GET" else 422
        page = assert_inert_html(_html(response, status), shown=shown)
        links = [dict(attrs) for tag, attrs in page.tags if tag == "a"]
        guideline_links = [a for a in links if a.get("target") == "_blank"]
        assert guideline_links == [
            {
                "href": "https://example.org/style",
                "target": "_blank",
                "rel": "noopener noreferrer",
            }
        ]
        assert not any(tag == "img" for tag, _ in page.tags)


def test_a_skip_with_a_hostile_reason_stays_text_for_managers(hostile):
    pending = [a for a in hostile["mine"] if not hasattr(a, "judgment")]
    url = reverse("rate_item", args=[pending[0].token])
    hostile["expert_client"].post(url, {"skip": "1", "flag_reason": PAYLOADS["handlers"][:200]})
    assert Judgment.objects.get(assignment=pending[0]).choice == "skip"
    client, study = hostile["manager_client"], hostile["study"]
    assert_inert_html(
        _html(client.get(reverse("study_detail", args=[study.pk]))),
        shown=[PAYLOADS["handlers"][:120]],
    )
    comparison = pending[0].comparison
    assert_inert_html(_html(client.get(reverse("study_item", args=[study.pk, comparison.pk]))))


def test_the_raters_overview_and_home_show_prompts_as_text(hostile):
    client = hostile["expert_client"]
    overview = _html(client.get(reverse("rate_study", args=[hostile["study"].pk])))
    judged = [a.comparison.prompt.text for a in hostile["mine"] if hasattr(a, "judgment")]
    assert_inert_html(overview, shown=[p[:100] for p in judged])
    assert_inert_html(_html(client.get(reverse("rate_home"))))


def test_the_raters_api_returns_the_exact_text_as_json_and_inert_html(hostile):
    client = hostile["expert_client"]
    listing = client.get("/api/assignments/?page_size=100")
    assert listing["Content-Type"] == "application/json"
    assert listing["X-Content-Type-Options"] == "nosniff"
    strings = strings_in(listing.json())
    for assignment in hostile["mine"]:
        for text in _shown(assignment):
            assert text in strings
    token = hostile["mine"][-1].token
    for path in ("/api/assignments/", f"/api/assignments/{token}/"):
        page = client.get(path, HTTP_ACCEPT="text/html")
        assert_inert_html(_html(page))


def test_manager_pages_show_outputs_comments_and_flags_as_text(hostile):
    client, study, run = hostile["manager_client"], hostile["study"], hostile["run"]
    pages = {
        reverse("study_list"): [],
        reverse("study_detail", args=[study.pk]): [FORMULA_COMMENTS[0], PAYLOADS["script"]],
        reverse("study_analysis", args=[study.pk]): [PAGE_CORRECTION, FORMULA_COMMENTS[2]],
        reverse("run_outputs", args=[run.pk]): [HUGE_LINE, *SHORT.values()],
        reverse("run_outputs", args=[run.pk]) + "?sort=-rouge1": [HUGE_LINE],
        reverse("run_detail", args=[run.pk]): [],
        reverse("dataset_detail", args=[run.dataset.name]): [SHORT["script"]],
    }
    for url, shown in pages.items():
        assert_inert_html(_html(client.get(url)), shown=shown)
    fragment = client.get(reverse("run_outputs", args=[run.pk]), **HTMX)
    assert_inert_html(_html(fragment), shown=[HUGE_LINE, *SHORT.values()])


def test_every_item_drill_down_shows_outputs_and_comments_as_text(hostile):
    client, study = hostile["manager_client"], hostile["study"]
    for comparison in Comparison.objects.filter(study=study):
        html = _html(client.get(reverse("study_item", args=[study.pk, comparison.pk])))
        judged = [a for a in comparison.assignments.all() if hasattr(a, "judgment")]
        comments = [t for a in judged for t in (a.judgment.comment, a.judgment.correction)]
        outputs = [comparison.output_a.text, comparison.output_b.text]
        assert_inert_html(html, shown=[*outputs, *comments])


def test_html_report_downloads_and_the_print_html_are_inert(hostile):
    study = hostile["study"]
    response = hostile["manager_client"].get(reverse("study_report", args=[study.pk, "html"]))
    assert response["Content-Disposition"].startswith("attachment")
    page = assert_inert_html(response.content.decode(), shown=[PAGE_CORRECTION])
    excerpts = [p.text[:PROMPT_EXCERPT_CHARS] for p in _prompts(study)]
    assert any(e in page.text for e in excerpts)
    assert_inert_html(render_html(report_build(study), for_print=True))


def _prompts(study):
    return [c.prompt for c in Comparison.objects.filter(study=study).select_related("prompt")]


def test_pdf_report_renders_and_carries_no_script_or_outside_link(hostile):
    study = hostile["study"]
    response = hostile["manager_client"].get(reverse("study_report", args=[study.pk, "pdf"]))
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF") and b"%%EOF" in response.content[-64:]
    import weasyprint

    html = render_html(report_build(study), for_print=True)
    raw = weasyprint.HTML(string=html).write_pdf(uncompressed_pdf=True)
    for forbidden in (b"/JavaScript", b"/JS ", b"javascript:", b"evil.example", b"/Launch"):
        assert forbidden not in raw


def test_csv_report_neutralises_every_formula(hostile):
    study = hostile["study"]
    body = hostile["manager_client"].get(reverse("study_report", args=[study.pk, "csv"]))
    rows = assert_csv_inert(body.content.decode())
    cells = {cell for row in rows for cell in row}
    stored = Judgment.objects.filter(assignment__comparison__study=study)
    for texts in stored.values_list("comment", "correction"):
        for text in texts:
            if text.startswith(("=", "+", "-", "@")):
                assert "'" + text in cells, text
    assert "'" + FORMULA_COMMENTS[0] in cells
    assert "'" + FORMULA_COMMENTS[2] in cells  # a better answer


def test_json_report_and_manager_api_round_trip_the_exact_text(hostile):
    client, study = hostile["manager_client"], hostile["study"]
    report = client.get(reverse("study_report", args=[study.pk, "json"]))
    assert report["Content-Type"] == "application/json"
    strings = strings_in(json.loads(report.content))
    assert FORMULA_COMMENTS[0] in strings and PAGE_CORRECTION in strings
    comparisons = client.get(f"/api/comparisons/?study={study.pk}")
    assert comparisons["Content-Type"] == "application/json"
    strings = strings_in(comparisons.json())
    for payload in PAYLOADS.values():
        assert payload in strings or f"Adapter: {payload}" in strings
    browsable = client.get(f"/api/comparisons/?study={study.pk}", HTTP_ACCEPT="text/html")
    as_json = json.dumps(PAYLOADS["script"])[1:-1]  # the page shows the JSON text
    assert_inert_html(_html(browsable), shown=[as_json])


@pytest.mark.parametrize("fmt", ["html", "csv", "json"])
def test_api_report_files_are_inert(hostile, fmt):
    study = hostile["study"]
    response = hostile["manager_client"].get(f"/api/studies/{study.pk}/report/?format={fmt}")
    assert response.status_code == 200
    body = response.content.decode()
    {"html": assert_inert_html, "csv": assert_csv_inert, "json": json.loads}[fmt](body)


def test_export_report_files_are_inert(hostile, tmp_path):
    study = hostile["study"]
    for fmt in ("html", "csv", "json"):
        out = tmp_path / f"report.{fmt}"
        call_command("export_report", study=study.pk, fmt=fmt, out=out)
        body = out.read_text(encoding="utf-8")
        {"html": assert_inert_html, "csv": assert_csv_inert, "json": json.loads}[fmt](body)


def test_the_admin_shows_an_output_as_text(hostile):
    output = hostile["mine"][0].comparison.output_b
    admin = ManagerFactory(is_superuser=True)
    page = _client(admin).get(reverse("admin:evalhub_output_change", args=[output.pk]))
    assert_inert_html(_html(page), shown=[output.text])
