"""A model judge as the study's cheap signal: the prediction-powered interval reads its calls
(valid, and narrower when the judge predicts the experts: a seeded simulation), a study
chooses it through a service and its page, an adaptive study takes it only before any draw."""

import numpy as np
import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from evalhub.analysis import ppi
from evalhub.analysis.judge_calibration import adapter_outcomes
from evalhub.models import Allocation, Comparison, Judge, JudgeVerdict, Study
from evalhub.selectors.studies import (
    REASON_NO_JUDGE_VERDICTS,
    ppi_block,
    study_monitored_pair,
)
from evalhub.services.allocation import allocation_next
from evalhub.services.studies import (
    ERROR_SIGNAL_AFTER_DRAWS,
    ERROR_SIGNAL_UNKNOWN,
    StudyError,
    study_set_signal,
)
from tests.evalhub.rating_fixtures import open_study
from tests.evalhub.test_ppi_studies import JUDGED, PROMPTS, scored_study
from tests.factories import ManagerFactory


def test_judge_signal_ppi_is_valid_and_narrower_when_the_judge_predicts_the_experts():
    """Comparisons' outcomes for the adapter are 1, ½ or 0 (θ = E[Y] = 0.7); the judge's call
    matches the outcome with probability ``accuracy``, else is drawn at random. The experts
    complete a random 120 of 300 comparisons (at 60 the normal interval of the experts alone
    covers about 94 % already, by measurement: small-sample, not the signal's doing)."""
    rng = np.random.default_rng(19)
    theta = 0.65 * 1 + 0.1 * 0.5  # 0.7
    sides = dict.fromkeys(range(300), "a")
    covered, ratios = {0.9: 0, 1 / 3: 0}, {0.9: [], 1 / 3: []}
    runs = 400
    for _ in range(runs):
        y = rng.choice([1.0, 0.5, 0.0], size=300, p=[0.65, 0.1, 0.25])
        labelled = rng.choice(300, size=120, replace=False)
        for accuracy in covered:
            random_call = rng.choice(["a", "tie", "b"], size=300)
            truth = np.where(y == 1, "a", np.where(y == 0, "b", "tie"))
            calls = np.where(rng.random(300) < accuracy, truth, random_call)
            predictions = adapter_outcomes(dict(enumerate(calls)), sides)
            result = ppi.prediction_powered(
                {int(i): float(y[i]) for i in labelled}, predictions, signal="judge:sim"
            )
            covered[accuracy] += result.interval[0] <= theta <= result.interval[1]
            ratios[accuracy].append(result.width_ratio)
    assert covered[0.9] / runs >= 0.92 and covered[1 / 3] / runs >= 0.92
    assert np.mean(ratios[0.9]) < 0.8  # an accurate judge narrows the interval
    assert np.mean(ratios[1 / 3]) > 0.9  # a random one hardly does


def _judge_like_experts(study: Study, name: str = "sharp") -> Judge:
    """A judge that calls every comparison for the output with the higher ROUGE-L, the one
    the experts of ``scored_study`` prefer, in both orders."""
    judge = Judge.objects.create(name=name)
    for c in Comparison.objects.filter(study=study).select_related("output_a", "output_b"):
        choice = "a" if c.output_a.metrics["rougeL"] > c.output_b.metrics["rougeL"] else "b"
        for order in ("ab", "ba"):
            JudgeVerdict.objects.create(judge=judge, comparison=c, order=order, choice=choice)
    return judge


@pytest.mark.django_db
def test_the_study_ppi_reads_the_chosen_judges_calls_labelled():
    study = scored_study()
    metric_width = ppi_block(study=study)["width_ratio"]
    _judge_like_experts(study)
    study = study_set_signal(study=study, signal="judge:sharp")
    block = ppi_block(study=study)
    assert (block["signal"], block["signal_kind"], block["reason"]) == (
        "judge:sharp",
        "judge",
        None,
    )
    assert (block["labelled"], block["unlabelled"]) == (JUDGED, PROMPTS - JUDGED)
    assert block["signal_correlation"] == pytest.approx(1.0)
    assert block["width_ratio"] < metric_width


@pytest.mark.django_db
def test_a_judge_without_verdicts_on_the_pair_says_so():
    study = scored_study()
    Judge.objects.create(name="idle")
    block = ppi_block(study=study_set_signal(study=study, signal="judge:idle"))
    assert block["reason"] == REASON_NO_JUDGE_VERDICTS and block["signal"] == "judge:idle"


@pytest.mark.django_db
@pytest.mark.parametrize("signal", ["", "rouge", "judge:", "judge:nobody"])
def test_an_unknown_signal_is_refused_and_nothing_changes(signal):
    study, _, _ = open_study(prompts=2)
    with pytest.raises(StudyError) as error:
        study_set_signal(study=study, signal=signal)
    assert str(error.value) == ERROR_SIGNAL_UNKNOWN.format(signal=signal)
    study.refresh_from_db()
    assert study.signal == "metric"


@pytest.mark.django_db
def test_an_adaptive_study_takes_the_judges_predictions_only_before_its_first_draw():
    study, (expert, *_), _ = open_study(prompts=6, raters=2, allocation=Allocation.ADAPTIVE)
    adapter, _ = study_monitored_pair(study=study)
    judge = Judge.objects.create(name="fond")
    for c in Comparison.objects.filter(study=study).select_related("output_a"):
        choice = "a" if c.output_a.system_id == adapter.pk else "b"  # the adapter, always
        for order in ("ab", "ba"):
            JudgeVerdict.objects.create(judge=judge, comparison=c, order=order, choice=choice)
    study_set_signal(study=study, signal="judge:fond")
    predictions = set(Comparison.objects.filter(study=study).values_list("prediction", flat=True))
    assert predictions == {1.0}
    allocation_next(study=study, rater=expert)
    with pytest.raises(StudyError) as error:
        study_set_signal(study=study, signal="metric")
    assert str(error.value) == ERROR_SIGNAL_AFTER_DRAWS.format(name=study.name)
    assert Study.objects.get(pk=study.pk).signal == "judge:fond"


@pytest.mark.django_db
def test_the_study_page_offers_the_judges_and_switches_the_signal():
    study = scored_study()
    _judge_like_experts(study)
    client = Client()
    client.force_login(ManagerFactory())
    page = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert 'value="judge:sharp"' in page and reverse("study_signal", args=[study.pk]) in page
    response = client.post(reverse("study_signal", args=[study.pk]), {"signal": "judge:sharp"})
    assert response.status_code == 302 and Study.objects.get(pk=study.pk).signal == "judge:sharp"
    refused = client.post(reverse("study_signal", args=[study.pk]), {"signal": "judge:zz"})
    assert [str(m) for m in get_messages(refused.wsgi_request)][-1] == (
        ERROR_SIGNAL_UNKNOWN.format(signal="judge:zz")
    )
    assert Study.objects.get(pk=study.pk).signal == "judge:sharp"
