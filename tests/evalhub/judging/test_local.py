"""The local judge on the packaged SmolLM2-135M (slow: the one-time GGUF conversion)."""

import pytest

from evalhub.judging.local import LocalJudge
from evalhub.judging.pairwise import AB, BA, PairText, render
from evalhub.models import JudgeRunStatus, JudgeVerdict
from evalhub.services.judging import judge_named, judge_run_create, judge_run_execute
from tests.factories import ComparisonFactory, OutputFactory, PromptFactory, StudyFactory

pytestmark = pytest.mark.slow

PAIRS = [
    PairText("What is the capital of France?", "The capital of France is Paris.", "Bananas."),
    PairText("What is 2 + 2?", "2 + 2 = 5", "2 + 2 equals 4, since two and two make four."),
]


def test_batched_answers_are_those_of_one_question_at_a_time(smollm2_dir):
    judge = LocalJudge(smollm2_dir)
    questions = [render(pair, order) for pair in PAIRS for order in (AB, BA)]
    batched = judge.judge(questions, batch_size=4)
    alone = [judge.judge([q], batch_size=1)[0] for q in questions]
    assert [s.choice for s in batched] == [s.choice for s in alone]
    assert [s.raw for s in batched] == [s.raw for s in alone]  # log-probs to 3 decimals
    assert all(s.raw.startswith(f"{s.choice} (log-probabilities: A ") for s in batched)
    assert all(s.prompt_tokens > 50 for s in batched)


@pytest.mark.django_db
def test_the_packaged_judge_answers_a_study_in_both_orders(smollm2_dir, settings):
    settings.EVALHUB_MODEL_CACHE = smollm2_dir.parent  # the judge finds it there by name
    study = StudyFactory()
    for pair in PAIRS:
        prompt = PromptFactory(messages=[{"role": "user", "content": pair.prompt}])
        a = OutputFactory(prompt=prompt, text=pair.output_a)
        b = OutputFactory(prompt=prompt, text=pair.output_b)
        ComparisonFactory(study=study, prompt=prompt, output_a=a, output_b=b)
    run = judge_run_execute(
        run=judge_run_create(judge=judge_named(name="smollm2-135m"), study=study)
    )
    assert (run.status, run.verdicts_done, run.errors) == (JudgeRunStatus.SUCCEEDED, 4, [])
    verdicts = JudgeVerdict.objects.filter(comparison__study=study)
    assert sorted(verdicts.values_list("order", flat=True)) == ["ab", "ab", "ba", "ba"]
    assert all("log-probabilities" in v.raw and v.prompt_tokens > 50 for v in verdicts)
    assert run.tokens_used == sum(v.prompt_tokens for v in verdicts)
