"""Running a judge over a study: both orders stored in storage terms, errors per question,
nothing stored half, budget and fatal errors stop the run, and a later run resumes."""

import json

import pytest

from evalhub.chat_client import UNAUTHORIZED, UNREACHABLE
from evalhub.judging import pairwise
from evalhub.judging.pairwise import NO_CHOICE
from evalhub.models import JudgeRunStatus, JudgeVerdict
from evalhub.services.judging import (
    BUDGET_REACHED,
    ERRORS_LEFT,
    KEY_MISSING,
    NO_COMPARISONS,
    STOPPED,
    JudgeError,
    judge_create,
    judge_run_create,
    judge_run_execute,
)
from tests.evalhub.chat_peers import (
    LLAMA_KEY,
    completion,
    free_port,
    ok,
    scripted_server,
)
from tests.factories import ComparisonFactory, JudgeVerdictFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    study = StudyFactory(criteria=["accuracy"], guidelines="Prefer the correct answer.")
    for _ in range(3):
        ComparisonFactory(study=study)
    gold = ComparisonFactory(study=study, is_gold=True, gold_answer="a")
    gold.output_a.text = "GOLD ITEM"
    gold.output_a.save()
    return study


def http_judge(url: str, **options):
    return judge_create(name="remote", backend="http", model="m", base_url=url, **options)


def run(judge, study):
    return judge_run_execute(run=judge_run_create(judge=judge, study=study))


def test_every_comparison_but_gold_is_asked_in_both_orders_and_stored_in_storage_terms(study):
    with scripted_server(ok("A")) as server:
        done = run(http_judge(server.url), study)
    assert (done.status, done.verdicts_done, done.errors, done.error) == ("succeeded", 6, [], "")
    assert done.tokens_used == 6 * 11
    assert len(server.requests) == 6
    assert not any("GOLD ITEM" in str(r["body"]) for r in server.requests)
    verdicts = JudgeVerdict.objects.filter(judge__name="remote")
    # "A" names the output shown first: output_a in order ab, output_b in order ba.
    assert set(verdicts.values_list("order", "choice")) == {("ab", "a"), ("ba", "b")}
    assert set(verdicts.values_list("raw", flat=True)) == {"A"}
    prompt = server.requests[0]["body"]["messages"][0]["content"]
    assert "accuracy" in prompt and "Prefer the correct answer." in prompt


def test_a_reply_naming_no_choice_is_an_error_per_question_and_stores_nothing(study):
    with scripted_server(ok("Both answers are lovely.")) as server:
        done = run(http_judge(server.url), study)
    assert done.status == JudgeRunStatus.FAILED
    assert done.error == ERRORS_LEFT.format(count=6, asked=6)
    assert len(done.errors) == 6 and done.verdicts_done == 0
    assert done.errors[0]["error"] == NO_CHOICE.format(reply="Both answers are lovely.")
    assert {e["order"] for e in done.errors} == {"ab", "ba"}
    assert not JudgeVerdict.objects.exists()
    assert done.tokens_used == 6 * 11  # the calls were paid for all the same


def test_a_later_run_asks_only_what_is_still_open(study):
    """A run killed half-way left verdicts for some questions: the next asks for the rest."""
    comparison = study.comparisons.filter(is_gold=False).first()
    with scripted_server(ok("B")) as server:
        judge = http_judge(server.url)
        JudgeVerdictFactory(judge=judge, comparison=comparison, order="ab", choice="a")
        JudgeVerdictFactory(judge=judge, comparison=comparison, order="ba", choice="a")
        first = run(judge, study)
        second = run(judge, study)
    assert (first.verdicts_done, second.verdicts_done) == (4, 0)
    assert second.status == JudgeRunStatus.SUCCEEDED
    assert len(server.requests) == 4
    assert JudgeVerdict.objects.filter(judge=judge).count() == 6
    kept = JudgeVerdict.objects.get(judge=judge, comparison=comparison, order="ab")
    assert kept.choice == "a"  # stored verdicts are never asked again nor overwritten


def test_the_token_budget_stops_the_run_and_a_bigger_one_lets_the_next_go_on(study):
    with scripted_server(ok("A")) as server:
        judge = http_judge(server.url, concurrency=1, token_budget=25)
        stopped = run(judge, study)
        assert stopped.status == JudgeRunStatus.FAILED
        assert stopped.error == BUDGET_REACHED.format(budget=25, judge="remote", spent=33)
        assert stopped.verdicts_done == 3 and len(server.requests) == 3
        # The budget is per study, over every run: a second run with the same one asks nothing.
        assert run(judge, study).verdicts_done == 0 and len(server.requests) == 3
        judge.token_budget = 0
        judge.save()
        finished = run(judge, study)
    assert (finished.status, finished.verdicts_done) == (JudgeRunStatus.SUCCEEDED, 3)
    assert JudgeVerdict.objects.filter(judge=judge).count() == 6


@pytest.mark.parametrize("concurrency", [1, 3])
def test_no_more_calls_are_in_flight_than_the_judge_allows(study, concurrency):
    slow = (200, json.dumps(completion("A")), {}, 0.2)
    with scripted_server(slow) as server:
        done = run(http_judge(server.url, concurrency=concurrency), study)
    assert done.verdicts_done == 6
    assert server.most_busy == concurrency


def test_429_then_success_is_retried_to_a_verdict(study):
    limited = (429, "{}", {"Retry-After": "0"}, 0.0)
    with scripted_server(limited, ok("tie")) as server:
        done = run(http_judge(server.url, concurrency=1), study)
    assert (done.status, done.verdicts_done) == (JudgeRunStatus.SUCCEEDED, 6)
    assert len(server.requests) == 7
    assert set(JudgeVerdict.objects.values_list("choice", flat=True)) == {"tie"}


def test_an_unreachable_endpoint_fails_the_run_after_one_question(study, monkeypatch):
    monkeypatch.setattr("evalhub.chat_client.time.sleep", lambda seconds: None)
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = run(http_judge(url, concurrency=1, max_retries=1), study)
    assert done.status == JudgeRunStatus.FAILED and done.verdicts_done == 0
    assert len(done.errors) == 1
    prefix = UNREACHABLE.format(url=f"{url}/chat/completions", tries=2, error="")
    assert done.errors[0]["error"].startswith(prefix)
    assert done.error == STOPPED.format(error=done.errors[0]["error"])


def test_the_real_server_judges_both_orders(study, llama, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", LLAMA_KEY)
    judge = http_judge(llama, api_key_env="JUDGE_TEST_KEY")
    done = run(judge, study)
    verdicts = JudgeVerdict.objects.filter(judge=judge)
    # SmolLM2-135M mostly names one answer in a sentence; a reply naming both is an error.
    assert {v.order for v in verdicts} == {"ab", "ba"}
    assert done.verdicts_done == verdicts.count() and done.verdicts_done + len(done.errors) == 6
    assert all(e["error"].startswith("the judge's reply names") for e in done.errors)
    for verdict in verdicts:
        assert (
            pairwise.to_storage(pairwise.parse_reply(verdict.raw), verdict.order) == verdict.choice
        )
        assert verdict.prompt_tokens > 50 and 0 < verdict.completion_tokens <= 16
    assert done.tokens_used >= sum(v.prompt_tokens + v.completion_tokens for v in verdicts)


def test_a_wrong_key_on_the_real_server_stops_the_run_with_a_clear_error(study, llama, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "not-the-key")
    done = run(http_judge(llama, api_key_env="JUDGE_TEST_KEY", concurrency=1), study)
    message = UNAUTHORIZED.format(url=f"{llama}/chat/completions", status=401)
    assert done.errors == [
        {"comparison": done.errors[0]["comparison"], "order": "ab", "error": message}
    ]
    assert done.error == STOPPED.format(error=message)
    assert not JudgeVerdict.objects.exists()


def test_a_key_variable_that_is_not_set_fails_the_run_before_any_call(study, monkeypatch):
    monkeypatch.delenv("JUDGE_TEST_KEY", raising=False)
    with scripted_server(ok("A")) as server:
        done = run(http_judge(server.url, api_key_env="JUDGE_TEST_KEY"), study)
    assert done.error == KEY_MISSING.format(judge="remote", var="JUDGE_TEST_KEY")
    assert server.requests == []


def test_a_study_of_gold_items_only_has_nothing_to_judge():
    study = StudyFactory()
    ComparisonFactory(study=study, is_gold=True, gold_answer="b")
    with pytest.raises(JudgeError) as error:
        judge_run_create(judge=judge_create(name="j"), study=study)
    assert str(error.value) == NO_COMPARISONS.format(study=study.name)
