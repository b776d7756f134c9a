"""manage.py judge_add and manage.py judge: bad input exits 2 and writes nothing; a run that
fails exits 1 with its error; a good one reports what it stored."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evalhub.judging.pairwise import BAD_TEMPLATE
from evalhub.management.commands.judge import RUN_FAILED, UNKNOWN_STUDY
from evalhub.models import Judge, JudgeRun, JudgeVerdict
from evalhub.services.judging import (
    ERRORS_LEFT,
    KEY_MISSING,
    NAME_TAKEN,
    UNKNOWN_JUDGE,
    URL_INVALID,
)
from tests.evalhub.chat_peers import ok, scripted_server
from tests.factories import ComparisonFactory, StudyFactory

pytestmark = pytest.mark.django_db


def refused(*args) -> CommandError:
    with pytest.raises(CommandError) as error:
        call_command(*args, verbosity=0)
    return error.value


def test_judge_add_defines_an_http_judge_that_reads_its_key_from_the_environment():
    call_command(
        "judge_add",
        "big",
        "--backend=http",
        "--url=http://10.0.0.5:8000/v1",
        "--model=Qwen/Qwen2.5-72B-Instruct",
        "--api-key-env=VLLM_KEY",
        "--concurrency=16",
        "--token-budget=500000",
        verbosity=0,
    )
    judge = Judge.objects.get(name="big")
    assert (judge.backend, judge.base_url, judge.api_key_env) == (
        "http",
        "http://10.0.0.5:8000/v1",
        "VLLM_KEY",
    )
    assert (judge.concurrency, judge.token_budget) == (16, 500000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend=http", "--url=10.0.0.5:8000"], URL_INVALID.format(url="10.0.0.5:8000")),
        (["--concurrency=0"], "concurrency must be between 1 and 64; got 0."),
        (["--backend=http", "--url=http://h/v1", "--api-key-env=MY KEY"], "api_key_env names"),
        (["--model=/nowhere/model"], "neither a packaged model"),
        (["--token-budget=99999999999"], "token_budget must be between 0 (none) and 2147483647"),
    ],
)
def test_judge_add_refuses_bad_input_with_exit_2(args, message):
    error = refused("judge_add", "j", *args)
    assert error.returncode == 2 and message in str(error)
    assert not Judge.objects.exists()


def test_judge_add_refuses_a_taken_name_and_a_bad_template(tmp_path):
    call_command("judge_add", "j", verbosity=0)
    assert str(refused("judge_add", "j")) == NAME_TAKEN.format(name="j")
    template = tmp_path / "t.txt"
    template.write_text("Which is better, {answer_a} or {answer}?")
    error = refused("judge_add", "k", f"--template={template}")
    assert error.returncode == 2
    fields = "prompt, answer_a, answer_b, criteria, guidelines, reference"
    problem = "unknown {answer}, no {answer_b}"
    assert str(error) == BAD_TEMPLATE.format(fields=fields, problem=problem)


def test_judge_refuses_an_unknown_study_or_judge_with_exit_2():
    error = refused("judge", "--study=999")
    assert (error.returncode, str(error)) == (2, UNKNOWN_STUDY.format(id=999))
    study = ComparisonFactory().study
    error = refused("judge", f"--study={study.pk}", "--judge=nope")
    assert str(error) == UNKNOWN_JUDGE.format(name="nope", known="smollm2-135m")
    assert error.returncode == 2 and not JudgeRun.objects.exists()


def test_judge_refuses_a_missing_key_before_starting_a_run(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    study = ComparisonFactory().study
    call_command(
        "judge_add", "r", "--backend=http", "--url=http://h/v1", "--api-key-env=NO_SUCH_KEY_VAR"
    )
    error = refused("judge", f"--study={study.pk}", "--judge=r")
    assert error.returncode == 2
    assert str(error) == KEY_MISSING.format(judge="r", var="NO_SUCH_KEY_VAR")
    assert not JudgeRun.objects.exists()


def test_judge_runs_here_and_reports_then_exits_1_when_questions_failed(capsys):
    study = StudyFactory()
    ComparisonFactory(study=study)
    ComparisonFactory(study=study)
    with scripted_server(ok("B")) as server:
        call_command("judge_add", "r", "--backend=http", f"--url={server.url}", verbosity=0)
        call_command("judge", f"--study={study.pk}", "--judge=r", verbosity=0)
        assert "succeeded; 4 verdicts stored, 0 errors, 44 tokens." in capsys.readouterr().out
        assert JudgeVerdict.objects.count() == 4
        ComparisonFactory(study=study)
        server.answer("no idea")
        error = refused("judge", f"--study={study.pk}", "--judge=r")
    run = JudgeRun.objects.latest("pk")
    assert error.returncode == 1
    assert str(error) == RUN_FAILED.format(id=run.pk, error=ERRORS_LEFT.format(count=2, asked=2))
