import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest

from evalhub.analysis.length import REASON_EQUAL_LENGTHS
from evalhub.reports.build import report_build
from evalhub.reports.csv_export import TEXT_CELL_CHARS, TEXT_CUT, neutralise
from evalhub.reports.render import (
    PDF_UNAVAILABLE,
    ReportError,
    render_csv,
    render_html,
    render_json,
    render_pdf,
)
from evalhub.services.studies import study_create
from tests.evalhub.report_fixtures import (
    ADAPTER_WIN_RATE,
    FORMULA_COMMENT,
    HOSTILE_OUTPUT,
    HOSTILE_SYSTEM,
    build_study,
)
from tests.evalhub.test_studies import gold_items, run_with_outputs
from tests.factories import ExpertFactory


@pytest.fixture
def report(db):
    return report_build(build_study(), resamples=300, bt_resamples=50)


class _Collector(HTMLParser):
    """Every element's tag and attributes, and every numbered span's key and value."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    return parser


def _lookup(data, key: str):
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def test_report_unblinds_judgments_through_the_left_output(report):
    pair = report["analysis"]["pairs"][0]
    assert (pair["system"], pair["opponent"]) == ("adapter-r16", HOSTILE_SYSTEM)
    assert (pair["wins"], pair["losses"], pair["ties"], pair["both_bad"]) == (16, 6, 1, 1)
    assert pair["win_rate"] == pytest.approx(ADAPTER_WIN_RATE)
    criterion = report["analysis"]["criteria"][0]
    # adapter scored 4, base 2 in every judgment, whichever side it was shown on
    assert criterion["mean_difference"] == pytest.approx(2.0)


def test_report_carries_provenance(report):
    assert report["study"]["name"] == "report-study"
    assert report["run"]["name"] == "qlora-r16"
    assert report["run"]["hyperparameters"]["rank"] == 16
    assert report["run"]["plan"] == {"total_steps": 30, "start_step": 0}
    assert report["run"]["loss_curves"]["train"] == [[10, 2.0], [20, 1.5], [30, 1.2]]
    assert report["dataset"] == {
        "id": report["dataset"]["id"],
        "name": "support-tickets",
        "content_hash": "ab" * 32,
    }
    assert report["base_model"]["name"] == "smollm2-135m"
    assert report["bertscore_encoders"] == ["all-MiniLM-L6-v2"]
    assert report["generated_at"]
    assert report["thresholds"]["min_items"] == 10


def test_json_export_round_trips_the_report(report):
    assert json.loads(render_json(report)) == json.loads(json.dumps(report))


def test_html_and_json_carry_the_same_numbers(report):
    data = json.loads(render_json(report))
    tags = _parse(render_html(report)).tags
    numbered = [attrs for _, attrs in tags if "data-key" in attrs]
    keys = {attrs["data-key"] for attrs in numbered}
    assert {"analysis.pairs.0.win_rate", "analysis.pairs.0.wilson", "study.judgments"} <= keys
    for attrs in numbered:
        value = _lookup(data, attrs["data-key"])
        if "data-insufficient" in attrs:
            assert value["insufficient"] is True
        elif "data-low" in attrs:
            assert json.loads(attrs["data-low"]) == value["low"]
            assert json.loads(attrs["data-high"]) == value["high"]
        else:
            assert json.loads(attrs["data-value"]) == value
    win_rate = next(a for a in numbered if a["data-key"] == "analysis.pairs.0.win_rate")
    assert json.loads(win_rate["data-value"]) == pytest.approx(ADAPTER_WIN_RATE)


def test_html_shows_the_rounded_win_rate(report):
    assert f"{ADAPTER_WIN_RATE * 100:.1f}%" in render_html(report)


def test_html_export_is_self_contained(report):
    tags = _parse(render_html(report)).tags
    names = {tag for tag, _ in tags}
    assert "script" not in names and "link" not in names and "img" not in names
    for _, attrs in tags:
        for name in ("src", "href"):
            assert not (attrs.get(name) or "").startswith(("http", "//", "/")), attrs
    assert "<svg" in render_html(report)


def test_hostile_text_is_inert_in_html(report):
    html = render_html(report)
    for tag, attrs in _parse(html).tags:
        assert tag not in {"script", "img", "b", "i"}
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    assert "&lt;b onmouseover=" in html  # the system name, escaped


def test_csv_has_one_row_per_judgment_with_unblinded_choices(report):
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert len(rows) == 24 == len(report["judgments"])
    winners = [r["choice"] for r in rows]
    assert winners.count("adapter-r16") == 16
    assert winners.count(HOSTILE_SYSTEM) == 6
    assert (winners.count("tie"), winners.count("both_bad")) == (1, 1)
    assert {r["systems"] for r in rows} == {f"adapter-r16 vs {HOSTILE_SYSTEM}"}


def test_csv_names_every_value_column_by_its_system(report):
    text = render_csv(report)
    header = next(csv.reader(io.StringIO(text)))
    for name in ("adapter-r16", HOSTILE_SYSTEM):
        for value in ("output", "length", "correctness", "=tone", "rouge1", "bertscore_f1"):
            assert f"{name}: {value}" in header
    sides = [c for c in header if c.endswith(("_a", "_b")) or c.startswith(("a_", "b_"))]
    assert sides == []
    rows = list(csv.DictReader(io.StringIO(text)))
    # scores are stored per output: the adapter 4 and base 2 on every row
    scores = {(r["adapter-r16: correctness"], r[f"{HOSTILE_SYSTEM}: correctness"]) for r in rows}
    assert scores == {("4", "2")}
    first = rows[0]
    assert first[f"{HOSTILE_SYSTEM}: rouge1"] == "0.0" and first["adapter-r16: rouge1"] == "0.2"
    assert first["adapter-r16: length"] == "30" and first[f"{HOSTILE_SYSTEM}: length"] == "10"


def test_csv_carries_the_prompt_and_both_outputs_and_reads_back_intact(db):
    study = build_study()
    comparison = study.comparisons.order_by("id")[1]
    prompt_text = 'Refund "order 7", please;\nit arrived, broken,\r\ntwice'
    comparison.prompt.messages = [{"role": "user", "content": prompt_text}]
    comparison.prompt.save()
    adapter_text = 'Sorry, "Alex" here.\n\nStep 1, return it; step 2, wait.'
    comparison.output_b.text = adapter_text
    comparison.output_b.save()
    report = report_build(study, resamples=50, bt_resamples=20)
    rows = list(csv.DictReader(io.StringIO(render_csv(report), newline="")))
    row = next(r for r in rows if r["comparison_id"] == str(comparison.pk))
    assert row["prompt"] == prompt_text
    assert row["adapter-r16: output"] == adapter_text
    assert row[f"{HOSTILE_SYSTEM}: output"] == "base answer 1"
    hostile = next(r for r in rows if r["comparison_id"] == str(study.comparisons.first().pk))
    assert hostile[f"{HOSTILE_SYSTEM}: output"] == HOSTILE_OUTPUT
    assert len(rows) == 24


def test_csv_neutralises_formula_injection(report):
    text = render_csv(report)
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in header)
    cells = [cell for row in body for cell in row]
    assert "'" + FORMULA_COMMENT in cells
    assert "'-1 bad prompt" in cells
    assert "'@bob" in cells
    assert not any(c.startswith(("=", "+", "@", "\t", "\r")) for c in cells)
    # numbers are not touched
    assert neutralise(-0.5) == -0.5


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_neutralise_prefixes_an_apostrophe(cell):
    assert neutralise(cell) == "'" + cell


def test_pdf_opens_and_is_paginated(report):
    import weasyprint

    pdf = render_pdf(report)
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    document = weasyprint.HTML(string=render_html(report, for_print=True)).render()
    assert len(document.pages) >= 2


def _boxes(box):
    yield box
    for child in getattr(box, "children", []):
        yield from _boxes(child)


def test_the_pdf_wraps_long_disagreement_texts_inside_their_columns(report):
    """The print layout of the disagreement table is fixed (automatic layout made WeasyPrint
    measure every break in the open texts): an unbreakable answer and a long system name
    still wrap inside their cells, and every character of them is laid out."""
    import weasyprint
    from weasyprint.formatting_structure.boxes import TableBox, TableCellBox, TextBox

    unbroken = "x" * 600
    report["disagreements"][0]["outputs"][0]["text"] = unbroken
    document = weasyprint.HTML(string=render_html(report, for_print=True)).render()
    laid_out, spilled, cells = [], [], 0
    for page in document.pages:
        tables = [b for b in _boxes(page._page_box) if isinstance(b, TableBox)]
        for table in tables:
            if "disagreements" not in (table.element.get("class") or ""):
                continue
            for cell in (b for b in _boxes(table) if isinstance(b, TableCellBox)):
                cells += 1
                right = cell.border_box_x() + cell.border_width()
                for text in (b for b in _boxes(cell) if isinstance(b, TextBox)):
                    laid_out.append(text.text)
                    if text.position_x + text.width > right + 0.5:
                        spilled.append(text.text)
    assert cells >= 5 + 6 * len(report["disagreements"])  # headers, then 5 + 1 cells an item
    assert spilled == []
    assert unbroken in "".join(laid_out)
    assert HOSTILE_SYSTEM.replace(" ", "") in "".join(laid_out).replace(" ", "")


def test_pdf_fails_with_a_clear_message_without_weasyprint(report, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pango(name, *args, **kwargs):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pango)
    with pytest.raises(ReportError) as error:
        render_pdf(report)
    assert str(error.value) == PDF_UNAVAILABLE.format(error="cannot load library 'libpango-1.0-0'")


def test_hostile_output_never_appears_raw_in_the_report(report):
    assert HOSTILE_OUTPUT not in render_html(report)


def test_html_draws_the_runs_loss_curves(report):
    html = render_html(report)
    section = html[html.index('id="loss"') :]
    assert "<svg" in section and "train loss" in section and "validation loss" in section


def test_three_systems_get_a_ranking_in_json_and_html(db):
    from tests.evalhub.report_fixtures import build_three_system_study

    report = report_build(build_three_system_study(), resamples=200, bt_resamples=100)
    ranking = report["analysis"]["ranking"]
    assert [s["system"] for s in ranking["systems"]] == ["reference", "adapter", "base"]
    assert ranking["judgments"] == 36
    pairs = {(p["system"], p["opponent"]): p["win_rate"] for p in report["analysis"]["pairs"]}
    # adapter first (kind order adapter, imported, base, reference), then base vs reference
    assert pairs == {
        ("adapter", "base"): 9 / 12,
        ("adapter", "reference"): 4 / 12,
        ("base", "reference"): 2 / 12,
    }
    data = json.loads(render_json(report))
    tags = _parse(render_html(report)).tags
    strengths = [a for _, a in tags if a.get("data-key", "").startswith("analysis.ranking.systems")]
    assert strengths
    for attrs in strengths:
        value = _lookup(data, attrs["data-key"])
        if "data-low" in attrs:
            assert json.loads(attrs["data-low"]) == value["low"]
        else:
            assert json.loads(attrs["data-value"]) == value


def test_report_unblinds_what_the_rating_services_store(db):
    """End to end with the real blinding: raters always pick the adapter's output, on whichever
    side the assignment showed it, and score it 5 against 1."""
    from evalhub.models import Assignment, Output, StudyStatus
    from evalhub.services.judgments import judgment_submit
    from evalhub.services.studies import study_create, study_set_status
    from tests.factories import ExpertFactory, OutputFactory, PromptFactory, SystemFactory

    alpha, beta = SystemFactory(name="alpha"), SystemFactory(name="beta")
    for _ in range(6):
        prompt = PromptFactory()
        OutputFactory(system=alpha, prompt=prompt)
        OutputFactory(system=beta, prompt=prompt)
    raters = [ExpertFactory(), ExpertFactory()]
    study = study_create(
        name="blind test", systems=[alpha, beta], raters=raters, criteria=["accuracy"], seed=5
    )
    study_set_status(study=study, status=StudyStatus.OPEN)
    sides = set()
    for assignment in Assignment.objects.filter(comparison__study=study):
        beta_left = Output.objects.get(pk=assignment.left_output_id).system_id == beta.pk
        sides.add(beta_left)
        judgment_submit(
            assignment=assignment,
            rater=assignment.rater,
            choice="a" if beta_left else "b",
            criterion_scores={"accuracy": {"a": 5, "b": 1} if beta_left else {"a": 1, "b": 5}},
        )
    assert sides == {True, False}  # both display orders really occurred
    report = report_build(study, resamples=100)
    pair = report["analysis"]["pairs"][0]
    beta_rate = pair["win_rate"] if pair["system"] == "beta" else 1 - pair["win_rate"]
    assert beta_rate == 1.0 and pair["n"] == 12
    criterion = report["analysis"]["criteria"][0]
    sign = 1 if criterion["system"] == "beta" else -1
    assert sign * criterion["mean_difference"] == 4.0
    assert {row["choice"] for row in report["judgments"]} == {"beta"}


def test_csv_cuts_a_text_longer_than_a_spreadsheet_cell_and_says_so(db):
    study = build_study()
    comparison = study.comparisons.order_by("id")[3]
    comparison.output_b.text = "x" * (TEXT_CELL_CHARS + 500)
    comparison.output_b.save()
    report = report_build(study, resamples=50, bt_resamples=20)
    rows = list(csv.DictReader(io.StringIO(render_csv(report), newline="")))
    cell = next(r for r in rows if r["comparison_id"] == str(comparison.pk))["adapter-r16: output"]
    assert cell == "x" * TEXT_CELL_CHARS + TEXT_CUT.format(more=500)
    whole = next(c for c in report["comparisons"] if c["comparison"] == comparison.pk)
    assert whole["text_a"] == "x" * (TEXT_CELL_CHARS + 500)  # the JSON keeps it whole


class _Text(HTMLParser):
    """The text a reader sees, tooltips and chart titles left out."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("title", "style")

    def handle_endtag(self, tag):
        self.skip -= tag in ("title", "style")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def _visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def test_report_turns_every_comparison_so_the_adapter_is_first(report):
    # base is stored as output a in the fixture; the report reads adapter − base throughout
    assert {(c["system_a"], c["system_b"]) for c in report["comparisons"]} == {
        ("adapter-r16", HOSTILE_SYSTEM)
    }
    rouge = next(m for m in report["analysis"]["metrics"] if m["metric"] == "rouge1")
    # the adapter's rouge1 is 0.2 on every item, the base's 0.1 × (item % 5)
    assert {round(x + 0.1 * (k % 5), 9) for k, (x, _, _) in enumerate(rouge["points"])} == {0.2}


def test_metric_disagreements_are_one_table_with_a_metric_column_and_the_texts(report):
    html = render_html(report)
    assert html.count('<table class="disagreements">') == 1
    assert "and the experts disagree most" in html
    table = html[html.index('<table class="disagreements">') :]
    table = table[: table.index("</table>")]
    assert "ROUGE-1" in table and "BERTScore F1" in table
    first = report["disagreements"][0]
    assert {m["metric"] for m in first["metrics"]} == {"rouge1", "bertscore_f1"}
    assert table.count('<tr class="item">') == len(report["disagreements"])
    assert "ROUGE-1<br>BERTScore F1" in table  # both metrics in the first item's metric cell
    # the texts, escaped, in a full-width row under each item: folded on screen, open in print
    assert f"Prompt and outputs of #{first['item']}</summary>" in table
    assert table.count('<tr class="texts">') == len(report["disagreements"])
    assert '<details class="texts">' in table
    assert '<details class="texts" open>' in render_html(report, for_print=True)
    assert "question 10 &lt;i&gt;x&lt;/i&gt;" in table
    assert "adapter answer 10, longer" in table and "base answer 10" in table


def test_the_report_names_systems_never_sides(report):
    text = _visible_text(render_html(report))
    for side in (r"\b[Oo]utput [ab]\b", r"\b[Ss]ystem [ab]\b", r"\ba − b\b", r"\bfor a\b",
                 r"\b\w+ [ab]\b(?= \d)"):  # fmt: skip
        assert not re.search(side, text), (side, re.search(side, text))
    assert "ROUGE-1: adapter-r16 − base" in render_html(report)  # the scatter's axis


def test_hyperparameters_read_as_a_list_of_settings_not_a_dict(db):
    study = build_study()
    study.run.hyperparameters = {
        "rank": 16,
        "learning_rate": 0.0002,
        "gradient_checkpointing": True,
        "lora": {"dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
    }
    study.run.save()
    html = render_html(report_build(study, resamples=50, bt_resamples=20))
    provenance = html[html.index('id="provenance"') : html.index('id="win-rates"')]
    for name, value in (
        ("rank", "16"),
        ("learning rate", "0.0002"),
        ("gradient checkpointing", "yes"),
        ("lora › dropout", "0.05"),
        ("lora › target modules", "q_proj, v_proj"),
        ("total steps", "30"),
    ):
        assert f"<dt>{name}</dt><dd>{value}</dd>" in provenance
    assert "{" not in provenance and "&#x27;" not in provenance


def test_a_study_with_gold_items_reports_them_in_their_stored_order(db):
    outputs = run_with_outputs(prompts=4)
    study = study_create(name="g", systems=outputs.systems, raters=[ExpertFactory()],
                         overlap=1, gold=gold_items(2))  # fmt: skip
    gold = {c.pk: c for c in study.comparisons.filter(is_gold=True)}
    report = report_build(study, resamples=20, bt_resamples=10)
    for row in (c for c in report["comparisons"] if c["is_gold"]):
        stored = gold[row["comparison"]]
        assert (row["output_a"], row["output_b"]) == (stored.output_a_id, stored.output_b_id)
        assert (
            row["gold"]
            == (stored.output_a if stored.gold_answer == "a" else stored.output_b).system.name
        )


def test_report_gives_the_tie_model_with_both_bad_apart(report):
    ties = report["analysis"]["ties"]
    (pair,) = ties["pairs"]
    assert (pair["system"], pair["opponent"]) == ("adapter-r16", HOSTILE_SYSTEM)
    # 16 adapter wins, 6 base wins, one tie and one "both bad", on 12 prompts
    assert (pair["n"], pair["prompts"], pair["both_bad"]) == (24, 12, 1)
    assert pair["both_bad_rate"] == pytest.approx(1 / 24)
    assert pair["p_win"] + pair["p_no_preference"] + pair["p_loss"] == pytest.approx(1)
    assert pair["p_win"] == pytest.approx(16 / 24, abs=0.01)
    assert "Davidson" in ties["method"]
    html = render_html(report)
    assert 'id="ties"' in html and "How to read this" in html[html.index('id="ties"') :]


def test_report_says_why_length_cannot_be_controlled_when_lengths_never_vary(report):
    # every adapter answer has 30 tokens and every base answer 10: one length ratio only
    (entry,) = report["analysis"]["length_controlled"]
    assert entry["system"] == "adapter-r16"
    assert entry["estimate"]["insufficient"] is True
    assert entry["estimate"]["reason"] == REASON_EQUAL_LENGTHS
    html = render_html(report)
    assert REASON_EQUAL_LENGTHS in html[html.index('id="length-control"') :]


def test_report_gives_agreement_intervals_and_each_raters_drift(report):
    analysis = report["analysis"]
    for measure in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha"):
        interval = analysis["agreement_intervals"][measure]
        value = analysis["agreement"][measure]["value"]
        assert interval["low"] <= value <= interval["high"]
    drift = analysis["drift"]
    assert [r["rater"] for r in drift["raters"]] == ["@bob", "ann"]
    # each rater judged the 12 items in order and took 1 s longer per item
    assert drift["raters"][1]["early_median_ms"] == 3500
    assert drift["raters"][1]["late_median_ms"] == 9500
    keys = {a["data-key"] for _, a in _parse(render_html(report)).tags if "data-key" in a}
    assert {
        "analysis.agreement_intervals.krippendorff_alpha",
        "analysis.agreement_intervals.pairs.0",
        "analysis.drift.change",
        "analysis.ties.pairs.0.both_bad_interval",
    } <= keys


def test_three_systems_get_a_tie_model_and_a_length_control_per_pair(db):
    from tests.evalhub.report_fixtures import build_three_system_study

    report = report_build(
        build_three_system_study(), resamples=100, bt_resamples=50, model_resamples=100
    )
    ties = report["analysis"]["ties"]
    assert [s["system"] for s in ties["systems"]] == ["reference", "adapter", "base"]
    assert ties["prompts"] == 36 and ties["judgments"] == 36
    assert len(ties["pairs"]) == len(report["analysis"]["length_controlled"]) == 3


def test_the_report_says_what_served_a_served_system(db):
    study = build_study()
    served = {"endpoint": "http://vllm.example:8000/v1", "model": "qlora-r16-lora"}
    study.systems.filter(kind="adapter").update(
        decoding={"max_new_tokens": 256, **served, "served": {"id": "qlora-r16-lora"}}
    )
    report = report_build(study, resamples=50, bt_resamples=10)

    adapter = next(s for s in report["study"]["systems"] if s["kind"] == "adapter")
    assert adapter["decoding"]["endpoint"] == served["endpoint"]
    text = _visible_text(render_html(report))
    assert "adapter-r16 (adapter, served by qlora-r16-lora at http://vllm.example:8000/v1)" in text
    assert text.count("served by") == 1  # the base was not served
