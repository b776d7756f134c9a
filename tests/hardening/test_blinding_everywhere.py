"""Everything an expert can make the server say, pages, fragments, API, redirects, headers and
error pages with DEBUG off, names no system, run, model or dataset, and carries no id of an
output, system, prompt or comparison. Exports are out of their reach. Tokens cannot be guessed.
A reviewer, who settles the comparisons where raters split, is held to the same: their walk
and their refusals are checked like the expert's.

tests/evalhub/test_rating_blinding.py and tests/evalhub/api/test_blinding.py check the rating
page and the assignment API one by one; this module walks everything else reachable.
"""

import itertools
import math
import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from evalhub import blinding
from evalhub.models import (
    Adjudication,
    Allocation,
    Assignment,
    Comparison,
    Judge,
    JudgeRun,
    JudgeVerdict,
    StudyStatus,
)
from evalhub.selectors.review import disputed_comparisons
from evalhub.services.accounts import password_set_path
from evalhub.services.judgments import judgment_submit
from evalhub.services.studies import study_create, study_set_status
from tests.factories import (
    BaseModelFactory,
    DatasetFactory,
    ExpertFactory,
    FineTuneRunFactory,
    JudgeFactory,
    JudgeVerdictFactory,
    ManagerFactory,
    OutputFactory,
    PromptFactory,
    ReviewerFactory,
    SystemFactory,
)
from trainer.models import Dataset, FineTuneRun

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
FIRST_ID = 8_110_417_000  # ids far from anything else in a page: finding one means a leak
NAMES = ["wombat-7b-chat", "pangolin-finetune", "adapter:pangolin", "base:wombat", "tapir-data"]
# A model judge with verdicts on the study: its name, model and replies are managers' only.
JUDGE_NAMES = ["okapi-judge", "okapi-13b", "okapi reply"]
# The adapter's outputs came from a served model: what served them is managers' only too.
SERVED_NAMES = ["aardvark-lora", "aardvark-host.example", "/adapters/aardvark"]
# Raters' better answers are their own text: no one else's page ever shows one.
OTHERS_ANSWER = "kinkajou-answer: what the other rater would have written"
EXPERTS_ANSWER = "numbat-answer: what this expert would have written"
# Words a rating page has no reason to use; the API schema and docs may, being generic.
RATING_WORDS = ["adapter", "base model", "fine-tun", "finetune", "lora", "system"]
NEVER_SEEN = [
    "study_analysis",
    "study_detail",
    "study_list",
    "dataset_list",
    "run_list",
    "run_new",
]


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src", "action", "hx-get", "hx-post") and value:
                self.urls.add(value)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def world():
    model = BaseModelFactory(id=FIRST_ID, name=NAMES[0], source=NAMES[0])
    dataset = DatasetFactory(id=FIRST_ID + 1, name=NAMES[4])
    run = FineTuneRunFactory(id=FIRST_ID + 2, name=NAMES[1], dataset=dataset, base_model=model)
    served = {"id": SERVED_NAMES[0], "root": SERVED_NAMES[2]}
    adapter = SystemFactory(
        id=FIRST_ID + 3,
        name=NAMES[2],
        kind="adapter",
        run=run,
        decoding={
            "endpoint": f"http://{SERVED_NAMES[1]}/v1",
            "model": SERVED_NAMES[0],
            "served": served,
        },
    )
    base = SystemFactory(id=FIRST_ID + 4, name=NAMES[3], kind="base", base_model=model)
    ids = [FIRST_ID + n for n in range(5)]
    next_id = FIRST_ID + 100
    for i in range(4):
        prompt = PromptFactory(id=next_id, dataset=dataset, reference=f"reference {i}")
        OutputFactory(id=next_id + 1, system=base, prompt=prompt, text=f"plain reply {i}")
        OutputFactory(id=next_id + 2, system=adapter, prompt=prompt, text=f"other reply {i}")
        ids += [next_id, next_id + 1, next_id + 2]
        next_id += 100
    expert, other = ExpertFactory(), ExpertFactory()
    _advance_ids(Comparison, FIRST_ID + 1000)
    study = study_create(
        name="Customer replies",
        systems=[base, adapter],
        raters=[expert, other],
        run=run,
        criteria=["accuracy"],
        show_reference=True,
        seed=5,
    )
    study_set_status(study=study, status=StudyStatus.OPEN)
    ids += list(study.comparisons.values_list("id", flat=True))
    judge = Judge.objects.create(name=JUDGE_NAMES[0], model=JUDGE_NAMES[1])
    for comparison in study.comparisons.all():
        for order in ("ab", "ba"):
            JudgeVerdict.objects.create(
                judge=judge, comparison=comparison, order=order, choice="a", raw=JUDGE_NAMES[2]
            )
    # A model judge has answered every comparison, naming the systems in its replies: nothing
    # of it may reach an expert.
    judge = JudgeFactory(name=NAMES[0], model=NAMES[0])
    JudgeRun.objects.create(judge=judge, study=study, status="succeeded", error=NAMES[2])
    for comparison in study.comparisons.all():
        JudgeVerdictFactory(judge=judge, comparison=comparison, raw=f"{NAMES[2]} is better")
    client = Client(raise_request_exception=False)
    client.force_login(expert)
    return {
        "study": study,
        "run": run,
        "dataset": dataset,
        "expert": expert,
        "other": other,
        "client": client,
        "ids": [str(i) for i in ids],
        "hidden": [],  # texts of others that this walk must never meet
        "mine": list(Assignment.objects.filter(rater=expert).order_by("position")),
        "theirs": list(Assignment.objects.filter(rater=other).order_by("position")),
    }


def _advance_ids(model, start: int) -> None:
    """Make the next ids of ``model`` start at ``start``, on SQLite and PostgreSQL alike."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [start])
        else:  # AUTOINCREMENT tables never reuse an id below the highest one handed out
            cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [start, table])
            if not cursor.rowcount:
                cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, start]
                )


def assert_blind(response, world, *, rating: bool | None = None) -> str:
    """The body and every header name nothing and carry no id that would unblind; rating pages
    and the assignment API do not even use the generic words."""
    path = response.request["PATH_INFO"]
    if rating is None:
        rating = path.startswith(("/rate/", "/review/", "/api/assignments/"))
    body = response.content.decode(errors="replace")
    headers = " ".join(f"{k}: {v}" for k, v in response.items())
    for text in (body, headers):
        lowered = text.lower()
        for name in NAMES + JUDGE_NAMES + SERVED_NAMES:
            assert name.lower() not in lowered, (name, response.request["PATH_INFO"])
        for leaked in world["ids"]:
            assert leaked not in text, (leaked, response.request["PATH_INFO"])
        for hidden in world["hidden"]:
            assert hidden not in text, (hidden, response.request["PATH_INFO"])
        if rating:
            for word in RATING_WORDS:
                assert word not in lowered, (word, response.request["PATH_INFO"])
    return body


def test_every_page_linked_from_the_experts_pages_is_blind(world):
    """Start at home and follow every same-site link, form and htmx URL, as the expert, who
    writes a better answer on each item; the other rater's better answers never show."""
    for theirs in world["theirs"]:
        judgment_submit(
            assignment=theirs, rater=world["other"], choice="b", correction=OTHERS_ANSWER
        )
    world["hidden"].append(OTHERS_ANSWER)
    client = world["client"]
    seen, queue = set(), [reverse("home")]
    items = {reverse("rate_item", args=[a.token]) for a in world["mine"]}
    while queue and len(seen) < 200:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        assert response.status_code in (200, 302, 403, 404, 405), (url, response.status_code)
        body = assert_blind(response, world)
        if url in items:  # judge it, as the expert would, and go where that leads
            sent = {"choice": "a", "comment": "fine", "correction": EXPERTS_ANSWER}
            submitted = client.post(url, sent)
            assert submitted.status_code == 302
            assert_blind(submitted, world)
            queue.append(submitted["Location"])
        if response.status_code == 302:
            queue.append(response["Location"])
        elif response["Content-Type"].startswith("text/html"):
            links = Links()
            links.feed(body)
            queue += [
                u
                for u in links.urls
                if u.startswith("/") and not u.startswith(("/static/", "//", "/accounts/logout"))
            ]
    assert items <= seen  # the walk reached every item
    names = {urlsplit(u).path for u in seen}
    manager_lists = ("study_list", "dataset_list", "run_list", "people")
    assert not names & {reverse(n) for n in manager_lists}
    # The expert's own better answer is theirs to read and revise, on the page and in the API.
    mine = world["mine"][0]
    assert EXPERTS_ANSWER in client.get(reverse("rate_item", args=[mine.token])).content.decode()
    api = client.get(f"/api/assignments/{mine.token}/judgment/").json()
    assert api["correction"] == EXPERTS_ANSWER


def test_htmx_fragments_redirects_and_refusals_are_blind(world, settings):
    client, mine = world["client"], world["mine"]
    url = reverse("rate_item", args=[mine[0].token])
    assert_blind(client.post(url, {}, **HTMX), world)  # 422, no choice
    assert_blind(client.post(url, {"skip": "1"}, **HTMX), world)  # 422, a skip without reason
    skipped = client.post(url, {"skip": "1", "flag_reason": "cut off"}, **HTMX)
    assert skipped.status_code == 200
    assert_blind(skipped, world)  # next item's fragment
    assert_blind(client.get(url), world)  # the skipped item, open to revise
    assert_blind(client.post(url, {"choice": "a"}, **HTMX), world)  # next item's fragment
    assert_blind(client.post(reverse("rate_item", args=[mine[1].token]), {"choice": "b"}), world)
    settings.EVALHUB_RATING_SUBMITS_PER_MINUTE = 0
    limited = client.post(reverse("rate_item", args=[mine[2].token]), {"choice": "b"}, **HTMX)
    assert limited.status_code == 429
    assert_blind(limited, world)
    study_set_status(study=world["study"], status=StudyStatus.PAUSED)
    paused = client.post(reverse("rate_item", args=[mine[2].token]), {"choice": "a"}, **HTMX)
    assert paused.status_code == 200 and "HX-Redirect" in paused
    assert_blind(paused, world)
    assert_blind(client.get(reverse("rate_study", args=[world["study"].pk])), world)


def test_the_api_answers_and_refusals_are_blind(world):
    client, mine, theirs = world["client"], world["mine"], world["theirs"]
    for path in (
        "/api/",
        "/api/assignments/",
        f"/api/assignments/?study={world['study'].pk}&pending=true",
        f"/api/assignments/{mine[0].token}/",
        f"/api/assignments/{mine[0].token}/judgment/",  # 404: not judged yet
        f"/api/assignments/{theirs[0].token}/",
        "/api/assignments/?study=abc",
    ):
        for accept in ("application/json", "text/html"):
            assert_blind(client.get(path, HTTP_ACCEPT=accept), world)
    judgment = f"/api/assignments/{mine[0].token}/judgment/"
    for body in (
        {"choice": "a"},
        {"choice": "zzz"},
        {"choice": "a", "criterion_scores": 5},
        {"choice": "skip"},
        {"choice": "skip", "flag_reason": "cut off"},
        {"choice": "a", "correction": EXPERTS_ANSWER},
        {"choice": "a", "correction": "x" * 10_001},
    ):
        put = client.put(judgment, body, content_type="application/json")
        assert put.status_code in (200, 201, 400)
        assert_blind(put, world)
    study_set_status(study=world["study"], status=StudyStatus.PAUSED)
    refused = client.put(judgment, {"choice": "b"}, content_type="application/json")
    assert refused.status_code == 409
    assert_blind(refused, world)


def test_the_schema_and_docs_name_no_system_run_or_model(world):
    for path in ("/api/schema/", "/api/docs/", "/api/schema/?format=json"):
        response = world["client"].get(path)
        assert response.status_code == 200
        assert_blind(response, world, rating=False)


MANAGER_URLS = [
    lambda w: reverse("study_list"),
    lambda w: reverse("study_detail", args=[w["study"].pk]),
    lambda w: reverse("study_analysis", args=[w["study"].pk]),
    lambda w: reverse("study_item", args=[w["study"].pk, w["mine"][0].comparison_id]),
    lambda w: reverse("dataset_list"),
    lambda w: reverse("dataset_detail", args=[w["dataset"].name]),
    lambda w: reverse("run_list"),
    lambda w: reverse("run_detail", args=[w["run"].pk]),
    lambda w: reverse("run_outputs", args=[w["run"].pk]),
    lambda w: reverse("run_new"),
    lambda w: reverse("study_delete", args=[w["study"].pk]),
    lambda w: reverse("run_delete", args=[w["run"].pk]),
    lambda w: reverse("dataset_delete", args=[w["dataset"].name]),
    lambda w: reverse("people"),
    lambda w: reverse("person_create"),
    lambda w: reverse("run_clone", args=[w["run"].pk]),
    lambda w: reverse("dataset_lineage", args=[w["dataset"].name]),
    lambda w: reverse("run_adapter", args=[w["run"].pk]),
    lambda w: f"/api/runs/{w['run'].pk}/adapter/",
    lambda w: (
        reverse("study_plan") + "?plan-win_rate=0.6&plan-tie_rate=0.2&plan-power=0.8"
        "&plan-alpha=0.05&plan-overlap=2"
    ),
    lambda w: "/api/runs/",
    lambda w: f"/api/runs/{w['run'].pk}/",
    lambda w: "/api/systems/",
    lambda w: "/api/comparisons/",
    lambda w: "/api/judgments/",
    lambda w: "/api/datasets/",
    lambda w: f"/api/studies/{w['study'].pk}/",
    lambda w: reverse("preference_list"),
    lambda w: reverse("preference_detail", args=["feedback-set", 1]),
    lambda w: reverse("preference_download", args=["feedback-set", 1]) + "?layout=pairs",
    lambda w: reverse("preference_build", args=[w["study"].pk]),
    lambda w: "/api/preference-sets/",
    lambda w: "/api/preference-sets/1/",
    lambda w: "/api/preference-sets/1/download/?layout=messages",
    lambda w: reverse("judges"),
    lambda w: "/api/judges/",
    lambda w: f"/api/judges/{Judge.objects.get(name=NAMES[0]).pk}/",
    lambda w: "/api/judge-runs/",
    lambda w: f"/api/judge-runs/?study={w['study'].pk}",
    lambda w: f"/api/judge-runs/{JudgeRun.objects.get().pk}/",
]

# Defining or running a judge, by the page and the API: refused to experts and reviewers alike.
JUDGE_WRITES = [
    lambda w: (reverse("judges"), {"name": "intruder-judge", "backend": "local"}),
    lambda w: ("/api/judges/", {"name": "intruder-judge"}),
    lambda w: (f"/api/studies/{w['study'].pk}/judge/", {"judge": NAMES[0]}),
]


@pytest.mark.parametrize("url", range(len(MANAGER_URLS)))
def test_manager_pages_refuse_the_expert_with_a_blind_403(world, settings, url):
    settings.DEBUG = False
    response = world["client"].get(MANAGER_URLS[url](world))
    assert response.status_code == 403
    assert_blind(response, world)


@pytest.mark.parametrize("fmt", ["html", "pdf", "csv", "json"])
def test_no_export_is_within_the_experts_reach(world, settings, fmt):
    settings.DEBUG = False
    client, study = world["client"], world["study"]
    page = client.get(reverse("study_report", args=[study.pk, fmt]))
    api = client.get(f"/api/studies/{study.pk}/report/?format={fmt}")
    assert (page.status_code, api.status_code) == (403, 403)
    assert_blind(page, world)
    assert_blind(api, world)


def test_manager_writes_refuse_the_expert_with_a_blind_403(world, settings):
    settings.DEBUG = False
    client, study, run = world["client"], world["study"], world["run"]
    posts = [
        (reverse("study_status", args=[study.pk]), {"status": "closed"}),
        (reverse("study_raters", args=[study.pk]), {}),
        (reverse("study_signal", args=[study.pk]), {"signal": f"judge:{JUDGE_NAMES[0]}"}),
        (reverse("study_judge", args=[study.pk]), {"judge": NAMES[0]}),
        (reverse("run_evaluate", args=[run.pk]), {}),
        (reverse("run_cancel", args=[run.pk]), {}),
        (reverse("run_resume", args=[run.pk]), {}),
        (reverse("study_delete", args=[study.pk]), {}),
        (reverse("run_delete", args=[run.pk]), {}),
        (reverse("dataset_delete", args=[world["dataset"].name]), {}),
        (reverse("person_create"), {"username": "intruder", "role": "manager"}),
        (reverse("person_link", args=[world["other"].pk]), {}),
        (reverse("run_retry", args=[run.pk]), {}),
        (f"/api/studies/{study.pk}/status/", {"status": "closed"}),
        ("/api/datasets/", {"name": "x", "file": SimpleUploadedFile("d.jsonl", b"{}")}),
        ("/api/runs/", {"dataset": run.dataset.name}),
        (reverse("preference_build", args=[study.pk]), {"name": "x", "validation_share": "0.1"}),
        ("/api/preference-sets/", {"study": study.pk, "name": "x"}),
        *(write(world) for write in JUDGE_WRITES),
    ]
    datasets, runs = Dataset.objects.count(), FineTuneRun.objects.count()
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert_blind(response, world)
    assert Assignment.objects.filter(comparison__study=study).count() == 8
    assert not get_user_model().objects.filter(username="intruder").exists()
    assert JudgeRun.objects.filter(study=study).count() == 1
    assert not Judge.objects.filter(name="intruder-judge").exists()
    assert (Dataset.objects.count(), FineTuneRun.objects.count()) == (datasets, runs)
    study.refresh_from_db()
    assert study.signal == "metric"


def test_the_set_password_page_is_blind_whoever_opens_it(world, settings):
    settings.DEBUG = False
    link = password_set_path(world["other"])
    for client in (world["client"], Client()):
        response = client.get(link, follow=True)
        assert response.status_code == 200
        assert_blind(response, world)


def test_404_for_someone_elses_token_is_indistinguishable_from_a_guess(world, settings):
    settings.DEBUG = False
    client = world["client"]
    guess = "A" * 43
    for template in ("/rate/{}/", "/api/assignments/{}/", "/api/assignments/{}/judgment/"):
        theirs = client.get(template.format(world["theirs"][0].token))
        guessed = client.get(template.format(guess))
        assert theirs.status_code == guessed.status_code == 404
        assert theirs.content == guessed.content
        assert_blind(theirs, world)


def test_a_server_error_on_an_expert_page_says_nothing_with_debug_off(world, settings, monkeypatch):
    settings.DEBUG = False
    secret = f"{NAMES[2]} vs {NAMES[3]}"

    def explode(**kwargs):
        raise RuntimeError(f"cannot render {secret}")

    monkeypatch.setattr("evalhub.views.rating.rating_item", explode)
    monkeypatch.setattr(
        "evalhub.api.rater_serializers.BlindAssignmentSerializer.to_representation", explode
    )
    client = world["client"]
    for url in (
        reverse("rate_item", args=[world["mine"][0].token]),
        f"/api/assignments/{world['mine'][0].token}/",
    ):
        response = client.get(url)
        assert response.status_code == 500
        assert "cannot render" not in response.content.decode()
        assert_blind(response, world)


def test_stored_tokens_are_long_random_and_unrelated_to_order_or_seed(world):
    tokens = [a.token for a in world["mine"] + world["theirs"]]
    more = _tokens_of_a_twin_study(world)
    everything = tokens + more
    assert len(set(everything)) == len(everything)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in everything)  # 256 bits
    # The same study made again with the same seed gets tokens that share nothing.
    assert not set(tokens) & set(more)
    by_creation = [a.token for a in Assignment.objects.order_by("pk")]
    for one, two in itertools.pairwise(by_creation):
        shared = len(_common_prefix(one, two))
        assert shared < 6, (one, two)  # consecutive tokens are not counters
    # Characters are spread over the whole alphabet: close to 6 bits each.
    counts = Counter("".join(everything))
    total = sum(counts.values())
    entropy = -sum(n / total * math.log2(n / total) for n in counts.values())
    assert entropy > 5.7, entropy


def _tokens_of_a_twin_study(world) -> list[str]:
    study = world["study"]
    twin = study_create(
        name="Customer replies, again",
        systems=list(study.systems.all()),
        raters=[world["expert"], world["other"]],
        run=world["run"],
        seed=study.seed,
    )
    twins = [ExpertFactory() for _ in range(6)]
    many = study_create(
        name="Customer replies, many raters",
        systems=list(study.systems.all()),
        raters=twins,
        overlap=6,
        seed=study.seed,
    )
    return list(
        Assignment.objects.filter(comparison__study__in=[twin, many]).values_list(
            "token", flat=True
        )
    )


def _common_prefix(one: str, two: str) -> str:
    n = 0
    while n < min(len(one), len(two)) and one[n] == two[n]:
        n += 1
    return one[:n]


def test_a_study_that_stopped_itself_tells_the_expert_it_is_complete_and_nothing_more(world):
    """The self-stop notice on every page the expert can reach names no system and no verdict."""
    study = world["study"]
    study.stop_when_decided = True
    study.save(update_fields=["stop_when_decided"])
    client = world["client"]
    for a in world["mine"]:  # the expert judges everything, the adapter winning each time
        client.post(reverse("rate_item", args=[a.token]), {"choice": "a"})
    study.status, study.stopped_at = StudyStatus.PAUSED, 4
    study.save(update_fields=["status", "stopped_at"])
    for url in (reverse("rate_study", args=[study.pk]), reverse("rate_home")):
        body = assert_blind(client.get(url), world)
        assert "complete" in body
        for word in ("verdict", "win rate", "interval", "better than"):
            assert word not in body.lower()
    for path in ("/api/assignments/", f"/api/assignments/?study={study.pk}"):
        assert_blind(client.get(path), world)


def test_a_manager_sees_the_names_so_the_check_can_fail(world):
    """The same check on a manager's page finds the names: it is not vacuous."""
    manager = Client()
    manager.force_login(ManagerFactory())
    response = manager.get(reverse("study_detail", args=[world["study"].pk]))
    with pytest.raises(AssertionError):
        assert_blind(response, world)


def test_a_better_answer_shown_where_it_is_hidden_fails_the_check(world):
    """The expert's own item shows their better answer: held to the reviewer's rule (every
    rater's answer hidden), the check finds it, so the walks above are not vacuous."""
    _raters_split(world)
    response = world["client"].get(reverse("rate_item", args=[world["mine"][1].token]))
    assert EXPERTS_ANSWER in response.content.decode()
    with pytest.raises(AssertionError, match="numbat-answer"):
        assert_blind(response, world)


def test_an_adaptive_study_is_as_blind_as_a_uniform_one(world):
    """Draws make the expert's items as they ask: every page, fragment and API answer on the
    way is blind, and so are the items the draws made."""
    uniform = world["study"]
    study = study_create(
        name="Second look",
        systems=list(uniform.systems.all()),
        raters=[world["expert"], world["other"]],
        run=world["run"],
        allocation=Allocation.ADAPTIVE,
        seed=9,
    )
    study_set_status(study=study, status=StudyStatus.OPEN)
    world["ids"] += [str(i) for i in study.comparisons.values_list("id", flat=True)]
    client = world["client"]
    assert_blind(client.get(reverse("rate_home")), world)
    for round_ in range(4):
        assert_blind(client.get(reverse("rate_study", args=[study.pk])), world)
        sent = client.get(reverse("rate_next", args=[study.pk]))
        assert sent.status_code == 302 and "/rate/" in sent["Location"]
        item = client.get(sent["Location"])
        assert item.status_code == 200
        assert_blind(item, world)
        headers = HTMX if round_ % 2 else {}
        assert_blind(client.post(sent["Location"], {"choice": "a"}, **headers), world)
    listed = client.get("/api/assignments/", {"study": study.pk})
    assert listed.status_code == 200
    assert_blind(listed, world)


def _raters_split(world) -> None:
    """The two raters disagree on every comparison, with comments, scores and better answers
    (which no reviewer sees); the other rater flags and skips the first one."""
    for mine, theirs in zip(world["mine"], _same_order(world), strict=True):
        judgment_submit(
            assignment=mine,
            rater=world["expert"],
            choice="a",
            criterion_scores={"accuracy": {"a": 4, "b": 2}},
            comment="the left one follows the steps",
            correction=EXPERTS_ANSWER,
        )
        verdict = blinding.unblind_choice("a", left_is_a=mine.left_is_a)
        opposite = blinding.blind_choice("b" if verdict == "a" else "a", left_is_a=theirs.left_is_a)
        judgment_submit(
            assignment=theirs,
            rater=world["other"],
            choice=opposite,
            comment="no",
            correction=OTHERS_ANSWER,
        )
    judgment_submit(
        assignment=_same_order(world)[0],
        rater=world["other"],
        choice="skip",
        flagged=True,
        flag_reason="the prompt is cut off",
        correction=OTHERS_ANSWER,
    )
    world["hidden"] += [EXPERTS_ANSWER, OTHERS_ANSWER]


def _same_order(world) -> list[Assignment]:
    """The other rater's assignments in the order of the expert's."""
    theirs = {a.comparison_id: a for a in world["theirs"]}
    return [theirs[a.comparison_id] for a in world["mine"]]


def test_every_page_linked_from_the_reviewers_pages_is_blind(world, settings):
    """Start at home and follow every same-site link and form as a reviewer, making a final
    call on every comparison of the queue."""
    settings.DEBUG = False
    _raters_split(world)
    reviewer = ReviewerFactory()
    client = Client(raise_request_exception=False)
    client.force_login(reviewer)
    study = world["study"]
    items = {
        reverse("review_item", args=[study.pk, d.token])
        for d in disputed_comparisons(study=study, reviewer=reviewer)
    }
    assert len(items) == 4
    seen, queue = set(), [reverse("home")]
    while queue and len(seen) < 200:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        assert response.status_code in (200, 302, 403, 404, 405), (url, response.status_code)
        body = assert_blind(response, world)
        if url in items:
            refused = client.post(url, {"choice": "left"})
            assert refused.status_code == 422
            assert_blind(refused, world)
            called = client.post(url, {"choice": "tie", "note": "both half right"})
            assert called.status_code == 302
            assert_blind(called, world)
            queue.append(called["Location"])
        if response.status_code == 302:
            queue.append(response["Location"])
        elif response["Content-Type"].startswith("text/html"):
            links = Links()
            links.feed(body)
            queue += [
                u
                for u in links.urls
                if u.startswith("/") and not u.startswith(("/static/", "//", "/accounts/logout"))
            ]
    assert items <= seen
    assert Adjudication.objects.filter(comparison__study=study).count() == 4
    names = {urlsplit(u).path for u in seen}
    manager_lists = ("study_list", "dataset_list", "run_list", "people")
    assert not names & {reverse(n) for n in manager_lists}


def test_manager_pages_writes_and_exports_refuse_the_reviewer_with_a_blind_403(world, settings):
    settings.DEBUG = False
    _raters_split(world)
    client = Client()
    client.force_login(ReviewerFactory())
    study = world["study"]
    urls = [make(world) for make in MANAGER_URLS] + [
        reverse("study_report", args=[study.pk, fmt]) for fmt in ("html", "pdf", "csv", "json")
    ]
    urls += [f"/api/studies/{study.pk}/report/?format=json", "/api/studies/"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 403, url
        assert_blind(response, world)
    unknown = client.get(reverse("review_item", args=[study.pk, "0" * 32]))
    assert unknown.status_code == 404
    assert_blind(unknown, world)
    posts = [
        (reverse("study_status", args=[study.pk]), {"status": "closed"}),
        (reverse("study_raters", args=[study.pk]), {}),
        (reverse("study_judge", args=[study.pk]), {"judge": NAMES[0]}),
        (reverse("person_create"), {"username": "intruder", "role": "manager"}),
        (f"/api/studies/{study.pk}/status/", {"status": "closed"}),
        (reverse("preference_build", args=[study.pk]), {"name": "x", "validation_share": "0.1"}),
        ("/api/preference-sets/", {"study": study.pk, "name": "x"}),
        *(write(world) for write in JUDGE_WRITES),
    ]
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert_blind(response, world)
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN
    assert not get_user_model().objects.filter(username="intruder").exists()
    assert JudgeRun.objects.filter(study=study).count() == 1
    assert not Judge.objects.filter(name="intruder-judge").exists()


def test_the_review_pages_refuse_the_expert_with_a_blind_403(world, settings):
    settings.DEBUG = False
    _raters_split(world)
    study = world["study"]
    token = disputed_comparisons(study=study, reviewer=ReviewerFactory())[0].token
    for url in (
        reverse("review_home"),
        reverse("review_study", args=[study.pk]),
        reverse("review_next", args=[study.pk]),
        reverse("review_item", args=[study.pk, token]),
    ):
        response = world["client"].get(url)
        assert response.status_code == 403, url
        assert_blind(response, world)


def test_the_judge_hidden_from_the_expert_is_on_the_managers_analysis_page(world):
    """The judge's name is a real leak to look for: managers read it where experts cannot."""
    manager = Client()
    manager.force_login(ManagerFactory())
    page = manager.get(reverse("study_analysis", args=[world["study"].pk]))
    assert page.status_code == 200 and JUDGE_NAMES[0] in page.content.decode()


def test_the_judges_hidden_from_the_expert_are_on_the_managers_judges_page_and_api(world):
    manager = Client()
    manager.force_login(ManagerFactory())
    page = manager.get(reverse("judges")).content.decode()
    api = manager.get("/api/judges/").content.decode()
    for body in (page, api):
        assert JUDGE_NAMES[0] in body and JUDGE_NAMES[1] in body
    runs = manager.get(f"/api/judge-runs/?study={world['study'].pk}").content.decode()
    assert NAMES[2] in runs  # the run's error, naming a system
