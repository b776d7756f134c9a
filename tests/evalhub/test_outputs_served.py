"""generate --endpoint: a served model's outputs, against llama-cpp-python's real server with the
packaged SmolLM2 (and, for the answers only a misbehaving endpoint gives, the scripted server)."""

import io

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evalhub.chat_client import REFUSED, UNAUTHORIZED, UNREACHABLE, Endpoint, chat
from evalhub.management.commands.generate import (
    AS_WITH_RUN,
    BAD_TIMEOUT,
    KEY_MISSING,
    RUN_OR_DATASET,
)
from evalhub.models import Output, System, SystemKind
from evalhub.selectors.outputs import evaluation_prompts, outputs_summary, run_systems
from evalhub.services.outputs import DECODING_CHANGED, NO_PROMPTS
from evalhub.services.served_outputs import ALL_EMPTY, FROM_A_FILE, MODEL_NOT_LISTED, SOME_FAILED
from evalhub.services.systems import SYSTEM_NOT_IMPORTED, system_imported_get_or_create
from tests.evalhub.chat_peers import (
    LLAMA_KEY,
    LLAMA_MODEL,
    free_port,
    listing,
    ok,
    scripted_server,
)
from tests.factories import (
    FineTuneRunFactory,
    OutputFactory,
    SystemFactory,
    held_out_questions,
)

pytestmark = pytest.mark.django_db
QUESTIONS = [
    "What is the capital of France?",
    "Name a colour of the sky.",
    "How many legs has a cat?",
    "Say hello in Spanish.",
    "What is two plus two?",
]
KEY_VAR = "SERVED_TEST_KEY"
MAX_TOKENS = 12
SCRIPTED = {"model": "m", "key_var": ""}  # the scripted server lists "m" and wants no key
ONE_AT_A_TIME = ["--concurrency", "1"]  # the scripted answers then go to prompts in order


@pytest.fixture
def run():
    run = FineTuneRunFactory()
    held_out_questions(run.dataset, QUESTIONS)
    return run


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_VAR, LLAMA_KEY)


@pytest.fixture
def no_waits(monkeypatch):
    monkeypatch.setattr("evalhub.chat_client.time.sleep", lambda seconds: None)


def served(url, *target, model=LLAMA_MODEL, key_var=KEY_VAR, extra=()) -> str:
    """Run ``generate --endpoint`` and return what it printed."""
    args = ["--endpoint", url, "--model", model, "--max-new-tokens", str(MAX_TOKENS), *target]
    if key_var:
        args += ["--api-key-env", key_var]
    out = io.StringIO()
    call_command("generate", *args, *extra, stdout=out)
    return out.getvalue()


def served_error(url, *target, **kwargs) -> CommandError:
    with pytest.raises(CommandError) as error:
        served(url, *target, **kwargs)
    return error.value


def as_adapter(run):
    return ["--run", str(run.pk), "--as", "adapter"]


def texts(system):
    return {o.prompt_id: o.text for o in Output.objects.filter(system=system)}


# --- the real server --------------------------------------------------------------------------


def test_the_served_adapter_answers_every_prompt_and_records_what_served_it(run, llama, key):
    served(llama, *as_adapter(run))

    adapter = run_systems(run=run)["adapter"]
    outputs = list(Output.objects.filter(system=adapter))
    assert len(outputs) == len(QUESTIONS) and run_systems(run=run)["base"] is None
    assert all(o.text.strip() for o in outputs)
    # The token counts are the server's (llama.cpp's may count one past max_tokens).
    assert all(o.token_count > 0 and o.latency_ms > 0 for o in outputs)
    assert adapter.decoding == {
        "max_new_tokens": MAX_TOKENS,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": None,
        "endpoint": llama,
        "model": LLAMA_MODEL,
        "served": {"id": LLAMA_MODEL},
    }


def test_each_answer_is_stored_with_the_prompt_it_answers(run, llama, key):
    served(llama, *as_adapter(run), extra=["--concurrency", "3"])

    # Asked one at a time, greedy: every stored answer is the one its own prompt gets.
    endpoint = Endpoint(llama, LLAMA_MODEL, api_key=LLAMA_KEY)
    stored = texts(run_systems(run=run)["adapter"])
    with httpx.Client() as client:
        for prompt in evaluation_prompts(dataset=run.dataset):
            reply = chat(client, endpoint, prompt.messages, max_tokens=MAX_TOKENS, temperature=0)
            assert stored[prompt.pk] == reply.text
    assert len(set(stored.values())) > 1


def test_a_second_call_asks_only_for_the_missing_answers(run, llama, key):
    served(llama, *as_adapter(run))
    adapter = run_systems(run=run)["adapter"]
    before = {o.pk: o.text for o in Output.objects.filter(system=adapter)}
    lost = sorted(before)[:2]
    Output.objects.filter(pk__in=lost).delete()

    printed = served(llama, *as_adapter(run))

    assert f"generated 2, kept {len(QUESTIONS) - 2} existing" in printed
    after = {o.pk: o.text for o in Output.objects.filter(system=adapter)}
    assert len(after) == len(QUESTIONS)
    assert {pk: t for pk, t in after.items() if pk in before} == {
        pk: t for pk, t in before.items() if pk not in lost
    }
    printed = served(llama, *as_adapter(run))
    assert f"generated 0, kept {len(QUESTIONS)} existing" in printed
    assert {o.pk: o.text for o in Output.objects.filter(system=adapter)} == after


def test_a_dataset_gets_an_imported_system_named_for_the_model(run, llama, key):
    served(llama, "--dataset", run.dataset.name)

    system = System.objects.get(name=LLAMA_MODEL)
    assert (system.kind, system.run) == (SystemKind.IMPORTED, None)
    assert system.description == f"served by {LLAMA_MODEL} at {llama}"
    assert len(texts(system)) == len(QUESTIONS)
    summary = outputs_summary(run=run, n_resamples=10)
    assert [s["name"] for s in summary["systems"]] == [LLAMA_MODEL]


def test_other_decoding_settings_are_refused_unless_overwritten(run, llama, key):
    served(llama, *as_adapter(run))
    old = run_systems(run=run)["adapter"].decoding

    error = served_error(llama, *as_adapter(run), extra=["--temperature", "0.7", "--seed", "1"])
    new = {**old, "temperature": 0.7, "seed": 1}
    assert error.returncode == 2
    changes = f"seed None → 1, temperature {old['temperature']!r} → 0.7"
    assert str(error) == DECODING_CHANGED.format(name=f"adapter:run-{run.pk}", changes=changes)
    served(llama, *as_adapter(run), extra=["--temperature", "0.7", "--seed", "1", "--overwrite"])
    assert run_systems(run=run)["adapter"].decoding == new


def test_a_model_the_server_does_not_list_is_refused_before_anything_is_written(run, llama, key):
    error = served_error(llama, *as_adapter(run), model="my-lora")

    assert error.returncode == 2
    assert str(error) == MODEL_NOT_LISTED.format(url=llama, model="my-lora", listed="'smollm2'")
    assert not System.objects.exists() and not run.dataset.prompts.exists()


def test_a_wrong_key_is_refused_before_anything_is_written(run, llama, monkeypatch):
    monkeypatch.setenv(KEY_VAR, "wrong")
    error = served_error(llama, *as_adapter(run))

    assert error.returncode == 2
    assert str(error) == UNAUTHORIZED.format(url=f"{llama}/models", status=401)
    assert not System.objects.exists()


def test_a_server_that_is_down_is_named_and_nothing_is_written(run, no_waits):
    url = f"http://127.0.0.1:{free_port()}/v1"
    error = served_error(url, *as_adapter(run), key_var="")

    assert error.returncode == 2
    assert str(error).startswith(UNREACHABLE.format(url=f"{url}/models", tries=4, error=""))
    assert not System.objects.exists() and not Output.objects.exists()


# --- what only a misbehaving endpoint does ------------------------------------------------------


def test_prompts_without_an_answer_are_reported_and_asked_for_again(run, no_waits):
    refused = (400, "prompt too long", {}, 0.0)
    script = [listing("m"), ok("one"), refused, ok("three"), refused, ok("five")]
    with scripted_server(*script) as server:
        error = served_error(server.url, *as_adapter(run), **SCRIPTED, extra=ONE_AT_A_TIME)
        url = f"{server.url}/chat/completions"
        first = REFUSED.format(url=url, status=400, body="prompt too long")
        assert (error.returncode, str(error)) == (
            1,
            SOME_FAILED.format(failed=2, total=5, error=first),
        )
        adapter = run_systems(run=run)["adapter"]
        assert sorted(texts(adapter).values()) == ["five", "one", "three"]

        server.script[:] = [listing("m"), ok("again")]
        served(server.url, *as_adapter(run), **SCRIPTED, extra=ONE_AT_A_TIME)
    assert sorted(texts(adapter).values()) == ["again", "again", "five", "one", "three"]


def test_a_fatal_error_stops_new_calls_and_keeps_what_was_answered(run):
    script = [listing("m"), ok("one"), ok("two"), (401, "no", {}, 0.0)]
    with scripted_server(*script) as server:
        error = served_error(server.url, *as_adapter(run), **SCRIPTED, extra=ONE_AT_A_TIME)
    assert error.returncode == 1
    assert str(error).startswith("stopped after 2 of 5 answers were stored")
    assert "Run the same command again to ask for the 3 missing" in str(error)
    assert len(server.requests) == 4  # the listing, two answers, the refusal: then no more
    assert sorted(texts(run_systems(run=run)["adapter"]).values()) == ["one", "two"]


def test_empty_answers_are_kept_flagged_beside_real_ones(run):
    with scripted_server(listing("m"), ok("yes"), ok("  ")) as server:
        printed = served(server.url, *as_adapter(run), **SCRIPTED, extra=ONE_AT_A_TIME)
    outputs = Output.objects.filter(system=run_systems(run=run)["adapter"])
    assert sorted((o.text, o.flags) for o in outputs)[-1] == ("yes", [])
    assert sum(o.flags == ["empty"] for o in outputs) == 4
    assert "generated 5, 4 of them empty (flagged)" in printed


def test_a_system_with_only_empty_answers_is_refused_and_keeps_none(run):
    with scripted_server(listing("m"), ok("")) as server:
        error = served_error(server.url, *as_adapter(run), **SCRIPTED, extra=ONE_AT_A_TIME)
    assert error.returncode == 1
    assert str(error) == ALL_EMPTY.format(url=server.url, count=5)
    assert not Output.objects.exists()


def test_a_split_without_prompts_is_named_and_nothing_is_asked(run):
    with scripted_server(listing("m")) as server:
        error = served_error(server.url, *as_adapter(run), "--split", "validation", **SCRIPTED)
    assert error.returncode == 2
    assert str(error) == NO_PROMPTS.format(dataset=run.dataset.name, split="validation")
    assert [request["method"] for request in server.requests] == ["GET"]  # the listing only
    assert not System.objects.exists()


def test_the_stored_endpoint_carries_no_credentials(run):
    with scripted_server(listing("m"), ok("fine")) as server:
        served(server.url.replace("http://", "http://alice:s3cret@"), *as_adapter(run), **SCRIPTED)
    assert run_systems(run=run)["adapter"].decoding["endpoint"] == server.url
    assert "s3cret" not in str(list(System.objects.values_list("decoding", "description")))


def test_served_base_and_adapter_of_one_server_share_their_settings(run):
    models = listing("base", "my-lora")
    answers = [ok("fine")] * len(QUESTIONS)
    with scripted_server(models, *answers, models, *answers) as server:
        for kind, model in [("base", "base"), ("adapter", "my-lora")]:
            served(server.url, "--run", str(run.pk), "--as", kind, model=model, key_var="")
    systems = run_systems(run=run)
    assert (systems["base"].decoding["model"], systems["adapter"].decoding["model"]) == (
        "base",
        "my-lora",
    )
    warnings = outputs_summary(run=run, n_resamples=10)["warnings"]
    assert not any("different settings" in w for w in warnings)


# --- options and targets ------------------------------------------------------------------------


def test_a_missing_key_variable_is_named(run, monkeypatch):
    monkeypatch.delenv(KEY_VAR, raising=False)
    error = served_error("http://127.0.0.1:1/v1", *as_adapter(run))
    assert (error.returncode, str(error)) == (2, KEY_MISSING.format(var=KEY_VAR))


@pytest.mark.parametrize(
    "target",
    [[], ["--run", "1"], ["--run", "1", "--dataset", "d", "--as", "base"]],
)
def test_a_run_needs_its_system_kind_and_excludes_a_dataset(target):
    error = served_error("http://127.0.0.1:1/v1", *target, key_var="")
    assert (error.returncode, str(error)) == (2, RUN_OR_DATASET)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (["--dataset", "d", "--as", "base"], AS_WITH_RUN),
        (["--run", "1", "--as", "base", "--system", "s"], AS_WITH_RUN),
        (["--run", "1", "--as", "base", "--timeout", "0"], BAD_TIMEOUT.format(value=0.0)),
    ],
)
def test_options_that_do_not_go_together_are_refused(target, message):
    error = served_error("http://127.0.0.1:1/v1", *target, key_var="")
    assert (error.returncode, str(error)) == (2, message)


def test_local_generation_does_not_mix_into_a_served_system(run, tmp_path):
    with scripted_server(listing("m"), ok("served")) as server:
        served(server.url, *as_adapter(run), **SCRIPTED)
    run.adapter_path = str(tmp_path)  # an adapter to load, were anything to be generated
    run.save()
    with pytest.raises(CommandError) as error:
        call_command("generate", "--run", str(run.pk), "--systems", "adapter")
    assert error.value.returncode == 2
    assert str(error.value).startswith(
        f"system 'adapter:run-{run.pk}' already has outputs generated with"
    )
    assert set(texts(run_systems(run=run)["adapter"]).values()) == {"served"}


def test_endpoint_options_without_an_endpoint_are_refused(run):
    with pytest.raises(CommandError) as error:
        call_command("generate", "--run", str(run.pk), "--model", "m")
    assert (error.value.returncode, str(error.value)) == (2, "--model goes with --endpoint")


def test_served_outputs_do_not_go_into_a_system_of_another_kind_or_from_a_file(run):
    SystemFactory(name="gold-ish", kind=SystemKind.REFERENCE)
    imported = system_imported_get_or_create(name="from-file", description="imported from a.jsonl")
    old = OutputFactory(system=imported, prompt__dataset=run.dataset, text="old")
    with scripted_server(listing("m")) as server:  # nothing but the listing is asked for
        for name, message in [
            ("gold-ish", SYSTEM_NOT_IMPORTED.format(name="gold-ish", kind="reference")),
            ("from-file", FROM_A_FILE.format(name="from-file")),
        ]:
            target = ["--dataset", run.dataset.name, "--system", name]
            error = served_error(server.url, *target, **SCRIPTED)
            assert (error.returncode, str(error)) == (2, message)
    assert texts(imported) == {old.prompt_id: "old"}
