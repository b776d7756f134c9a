"""The model card: a pure function of plain data, and the data a run's rows give it."""

import pytest
import yaml
from statsmodels.stats.proportion import proportion_confint

from evalhub.reports.model_card import QUOTE_CHARS, CardData, LineageStep, WinRate, model_card
from evalhub.selectors.model_card import model_card_data
from tests.evalhub.lineage_fixtures import build_loop


def _card(**changes) -> CardData:
    data = {
        "name": "dpo-v2",
        "run": 9,
        "method": "dpo",
        "base_model": "smollm2-135m",
        "dataset": "prefs-v1",
        "content_hash": "ab" * 32,
        "training_rows": 40,
        "hyperparameters": {"beta": 0.1, "rank": 16},
        "headline": "Reward accuracy 0.750",
        "lineage": [
            LineageStep(9, "dpo-v2", "dpo", "prefs-v1", "ab" * 32, "prefs v1"),
            LineageStep(4, "sft-v1", "sft", 'tickets "2026"', "cd" * 32),
        ],
        "preference_set": "prefs v1",
    }
    return CardData(**{**data, **changes})


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_the_front_matter_is_yaml_in_the_hugging_face_layout():
    meta = _front_matter(model_card(_card()))
    assert meta == {
        "base_model": "smollm2-135m",
        "library_name": "peft",
        "license": "unknown",
        "tags": ["peft", "lora", "qlora", "evalhub", "dpo"],
        "datasets": ['tickets "2026"', "prefs-v1"],
    }


def test_the_sections_come_in_order_with_the_content_hash_and_hyperparameters():
    text = model_card(_card())
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Model description",
        "## Training data",
        "## Method and hyperparameters",
        "## Evaluation",
        "## Known weaknesses",
        "## Lineage",
    ]
    assert f"content hash (sha256): `{'ab' * 32}`" in text
    assert "- beta: 0.1" in text and "- rank: 16" in text
    assert "1. run 4 sft-v1 (sft) on tickets" in text
    assert "2. run 9 dpo-v2 (dpo) on prefs-v1, preference set prefs v1" in text


def test_win_rates_read_with_their_intervals_or_say_why_not():
    rates = [
        WinRate("base", "base:m", "test round", 0.75, 0.5, 0.9, 10),
        WinRate("previous adapter", "adapter:v1", "test round", 0.6, None, None, 5),
    ]
    text = model_card(_card(win_rates=rates, experts=2, judgments=15))
    assert "| base | base:m | test round | 0.750 [95 % CI 0.500, 0.900] | 10 |" in text
    assert "| previous adapter | adapter:v1 | test round | 0.600 (too few judgments" in text
    assert "Experts: 2; judgments: 15." in text


def test_without_studies_or_scores_the_card_says_so():
    text = model_card(_card())
    assert "No expert study has compared this adapter" in text
    assert "No output of this adapter has been scored." in text
    assert "No rater comment on an item this adapter lost." in text


def test_weaknesses_are_quoted_on_one_line_and_cut():
    long = "word " * 200
    text = model_card(_card(weaknesses=["too\nterse", long]))
    assert "> too terse" in text
    quoted = [line for line in text.splitlines() if line.startswith("> word")]
    assert len(quoted) == 1 and len(quoted[0]) == 2 + QUOTE_CHARS and quoted[0].endswith("…")


@pytest.mark.django_db
def test_the_run_gives_win_rates_against_base_and_v1_from_the_test_study():
    loop = build_loop()
    data = model_card_data(run=loop.v2)
    by_role = {w.role: w for w in data.win_rates}
    assert set(by_role) == {"base", "previous adapter"}
    base, previous = by_role["base"], by_role["previous adapter"]
    assert (base.opponent, base.study, base.judgments) == ("base:smollm", "test round", 10)
    assert base.win_rate == pytest.approx(7.5 / 10)
    assert (base.low, base.high) == pytest.approx(proportion_confint(7.5, 10, method="wilson"))
    assert previous.opponent == "adapter:v1" and previous.win_rate == pytest.approx(0.6)
    assert (previous.low, previous.high) == pytest.approx(
        proportion_confint(6, 10, method="wilson")
    )
    assert (data.experts, data.judgments) == (1, 30)
    lost = {"lost 7 to base", "lost 8 to base", *[f"lost {i} to v1" for i in range(6, 10)]}
    assert len(data.weaknesses) == 5 and set(data.weaknesses) <= lost
    assert data.metrics == {"rougeL": pytest.approx(0.25)}
    assert data.preference_set == "support-prefs v1" and data.training_rows == 4
    assert [step.run for step in data.lineage] == [loop.v2.pk, loop.v1.pk]
    assert data.headline == "Reward accuracy 0.750"


@pytest.mark.django_db
def test_comments_on_items_the_adapter_won_are_no_weakness():
    loop = build_loop()
    won = loop.test_study.comparisons.filter(output_b__system=loop.adapter_v2).first()
    judgment = won.assignments.get().judgment
    assert judgment.choice == "a"  # v2 is shown on the left and won this one
    judgment.comment = "v2 was better here"
    judgment.save()
    assert "v2 was better here" not in model_card_data(run=loop.v2).weaknesses
    assert model_card_data(run=loop.v1).weaknesses == []  # no comment on v1's losses
