"""Every role × every study and rating view × the expected status.

A rater's pages answer 404, not 403, to anyone else: a token or a study id must not be
confirmed to exist.
"""

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from evalhub.models import Judgment
from evalhub.selectors.rating import rater_next_assignment
from evalhub.selectors.review import disputed_comparisons
from evalhub.services.preferences import preference_set_build
from tests.evalhub.preference_fixtures import feedback_study, judge
from tests.evalhub.rating_fixtures import open_study
from tests.evalhub.review_fixtures import disputed_study
from tests.factories import ExpertFactory, ManagerFactory, ReviewerFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "expert", "other_expert", "reviewer", "manager")

JUDGE_FORM = {
    "name": "matrix-judge",
    "backend": "local",
    "model": "smollm2-135m",
    "max_tokens": "16",
    "temperature": "0",
    "timeout_s": "60",
    "max_retries": "3",
    "concurrency": "4",
    "token_budget": "0",
}

# view: (method, url builder, data, {role: status})
MATRIX = {
    "study_list": ("get", lambda w: reverse("study_list"), None, (302, 403, 403, 403, 200)),
    "study_create": ("get", lambda w: reverse("study_create"), None, (302, 403, 403, 403, 200)),
    "study_create_post": ("post", lambda w: reverse("study_create"), {}, (302, 403, 403, 403, 422)),
    "study_plan": ("get", lambda w: w["plan"], None, (302, 403, 403, 403, 200)),
    "study_plan_bad": ("get", lambda w: reverse("study_plan"), None, (302, 403, 403, 403, 422)),
    "study_detail": ("get", lambda w: w["detail"], None, (302, 403, 403, 403, 200)),
    "study_status": (
        "post",
        lambda w: w["status"],
        {"status": "paused"},
        (302, 403, 403, 403, 302),
    ),
    "study_status_get": ("get", lambda w: w["status"], None, (302, 403, 403, 403, 405)),
    "study_raters": ("post", lambda w: w["raters"], {}, (302, 403, 403, 403, 302)),
    "study_signal": (
        "post",
        lambda w: w["signal"],
        {"signal": "metric"},
        (302, 403, 403, 403, 302),
    ),
    "study_signal_get": ("get", lambda w: w["signal"], None, (302, 403, 403, 403, 405)),
    "study_judge": ("post", lambda w: w["judge"], {}, (302, 403, 403, 403, 302)),
    "study_judge_get": ("get", lambda w: w["judge"], None, (302, 403, 403, 403, 405)),
    "study_delete": ("get", lambda w: w["study_delete"], None, (302, 403, 403, 403, 200)),
    "study_delete_post": ("post", lambda w: w["study_delete"], {}, (302, 403, 403, 403, 302)),
    "run_delete": ("get", lambda w: w["run_delete"], None, (302, 403, 403, 403, 200)),
    "run_delete_post": ("post", lambda w: w["run_delete"], {}, (302, 403, 403, 403, 409)),
    "dataset_delete": ("get", lambda w: w["dataset_delete"], None, (302, 403, 403, 403, 200)),
    "dataset_delete_post": ("post", lambda w: w["dataset_delete"], {}, (302, 403, 403, 403, 409)),
    "dataset_lineage": ("get", lambda w: w["lineage"], None, (302, 403, 403, 403, 200)),
    # The study's run has no adapter yet: a manager learns so with a 404.
    "run_adapter": ("get", lambda w: w["run_adapter"], None, (302, 403, 403, 403, 404)),
    "judges": ("get", lambda w: reverse("judges"), None, (302, 403, 403, 403, 200)),
    "judges_post": ("post", lambda w: reverse("judges"), JUDGE_FORM, (302, 403, 403, 403, 302)),
    "judges_post_bad": (
        "post",
        lambda w: reverse("judges"),
        JUDGE_FORM | {"concurrency": "0"},
        (302, 403, 403, 403, 422),
    ),
    "people": ("get", lambda w: reverse("people"), None, (302, 403, 403, 403, 200)),
    "person_create": ("get", lambda w: reverse("person_create"), None, (302, 403, 403, 403, 200)),
    "person_create_post": (
        "post",
        lambda w: reverse("person_create"),
        {"username": "newcomer", "role": "expert"},
        (302, 403, 403, 403, 200),
    ),
    "person_link": ("post", lambda w: w["person_link"], {}, (302, 403, 403, 403, 200)),
    "person_link_get": ("get", lambda w: w["person_link"], None, (302, 403, 403, 403, 405)),
    "rate_home": ("get", lambda w: reverse("rate_home"), None, (302, 200, 200, 200, 200)),
    "rate_study": ("get", lambda w: w["overview"], None, (302, 200, 404, 404, 404)),
    "rate_next": ("get", lambda w: w["next"], None, (302, 302, 404, 404, 404)),
    "rate_item": ("get", lambda w: w["item"], None, (302, 200, 404, 404, 404)),
    "rate_item_post": ("post", lambda w: w["item"], {"choice": "a"}, (302, 302, 404, 404, 404)),
    "rate_item_skip": (
        "post",
        lambda w: w["item"],
        {"skip": "1", "flag_reason": "cut off"},
        (302, 302, 404, 404, 404),
    ),
    "rate_item_correction": (
        "post",
        lambda w: w["item"],
        {"choice": "a", "correction": "Paris."},
        (302, 302, 404, 404, 404),
    ),
    # Refused for its length (422) to its rater only: anyone else learns nothing of the item.
    "rate_item_correction_long": (
        "post",
        lambda w: w["item"],
        {"choice": "a", "correction": "x" * 10_001},
        (302, 422, 404, 404, 404),
    ),
    "rate_item_put": ("put", lambda w: w["item"], None, (302, 405, 405, 405, 405)),
    "study_item": ("get", lambda w: w["study_item"], None, (302, 403, 403, 403, 200)),
    "review_home": ("get", lambda w: reverse("review_home"), None, (302, 403, 403, 200, 200)),
    "review_study": ("get", lambda w: w["review"], None, (302, 403, 403, 200, 200)),
    "review_next": ("get", lambda w: w["review_next"], None, (302, 403, 403, 302, 302)),
    # The token is the reviewer's own: anyone else's queue does not hold it.
    "review_item": ("get", lambda w: w["review_item"], None, (302, 403, 403, 200, 404)),
    "review_item_post": (
        "post",
        lambda w: w["review_item"],
        {"choice": "tie"},
        (302, 403, 403, 302, 404),
    ),
    "review_item_put": ("put", lambda w: w["review_item"], None, (302, 403, 403, 405, 405)),
    "preference_list": (
        "get",
        lambda w: reverse("preference_list"),
        None,
        (302, 403, 403, 403, 200),
    ),
    "preference_detail": ("get", lambda w: w["preference"], None, (302, 403, 403, 403, 200)),
    "preference_download": (
        "get",
        lambda w: w["preference_download"] + "?layout=messages",
        None,
        (302, 403, 403, 403, 200),
    ),
    "preference_download_bad": (
        "get",
        lambda w: w["preference_download"] + "?layout=csv",
        None,
        (302, 403, 403, 403, 400),
    ),
    "preference_build": ("get", lambda w: w["preference_build"], None, (302, 403, 403, 403, 200)),
    "preference_build_post": (
        "post",
        lambda w: w["preference_build"],
        {"name": "again", "validation_share": "0.1", "seed": "0"},
        (302, 403, 403, 403, 302),
    ),
    # The rated study is on test prompts: building from it is refused, as a form error.
    "preference_build_refused": (
        "post",
        lambda w: w["preference_build_test"],
        {"name": "leak", "validation_share": "0.1", "seed": "0"},
        (302, 403, 403, 403, 422),
    ),
}


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


@pytest.fixture
def world():
    study, (expert, _), _ = open_study(prompts=2)
    token = rater_next_assignment(study=study, rater=expert).token
    open_study(prompts=1, raters=2, name="Another study")  # other experts rate elsewhere
    disputes = disputed_study(name="Disputed study")
    reviewer = ReviewerFactory()
    feedback, (first, _), _ = feedback_study(prompts=1, raters=2, name="Feedback round")
    judge(feedback.comparisons.get(), first, "adapter")
    built = preference_set_build(study=feedback, name="round")
    review_token = disputed_comparisons(study=disputes.study, reviewer=reviewer)[0].token
    return {
        "users": {
            "anonymous": None,
            "expert": expert,
            "other_expert": ExpertFactory(),
            "reviewer": reviewer,
            "manager": ManagerFactory(),
        },
        "detail": reverse("study_detail", args=[study.pk]),
        "plan": reverse("study_plan") + "?plan-win_rate=0.6&plan-tie_rate=0&plan-power=0.8"
        "&plan-alpha=0.05&plan-overlap=2&plan-raters=6",
        "status": reverse("study_status", args=[study.pk]),
        "raters": reverse("study_raters", args=[study.pk]),
        "signal": reverse("study_signal", args=[study.pk]),
        "judge": reverse("study_judge", args=[study.pk]),
        "study_delete": reverse("study_delete", args=[study.pk]),
        "run_delete": reverse("run_delete", args=[study.run.pk]),
        "dataset_delete": reverse("dataset_delete", args=[study.run.dataset.name]),
        "lineage": reverse("dataset_lineage", args=[study.run.dataset.name]),
        "run_adapter": reverse("run_adapter", args=[study.run.pk]),
        "person_link": reverse("person_link", args=[expert.pk]),
        "overview": reverse("rate_study", args=[study.pk]),
        "next": reverse("rate_next", args=[study.pk]),
        "item": reverse("rate_item", args=[token]),
        "study_item": reverse("study_item", args=[study.pk, study.comparisons.first().pk]),
        "review": reverse("review_study", args=[disputes.study.pk]),
        "review_next": reverse("review_next", args=[disputes.study.pk]),
        "review_item": reverse("review_item", args=[disputes.study.pk, review_token]),
        "preference": reverse("preference_detail", args=[built.name, built.version]),
        "preference_download": reverse("preference_download", args=[built.name, built.version]),
        "preference_build": reverse("preference_build", args=[feedback.pk]),
        "preference_build_test": reverse("preference_build", args=[study.pk]),
    }


@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=ROLES)
@pytest.mark.parametrize("view", MATRIX)
def test_permission_matrix(world, view, role_index):
    method, url, data, expected = MATRIX[view]
    client = Client()
    user = world["users"][ROLES[role_index]]
    if user is not None:
        client.force_login(user)
    response = getattr(client, method)(url(world), data or {})
    assert response.status_code == expected[role_index]
    if response.status_code == 302 and user is None:
        assert response["Location"].startswith(reverse("login"))


def test_a_co_rater_of_the_same_study_gets_404_for_someone_elses_token(client):
    study, (owner, co_rater), _ = open_study(prompts=2)
    token = rater_next_assignment(study=study, rater=owner).token
    client.force_login(co_rater)
    assert client.get(reverse("rate_item", args=[token])).status_code == 404
    assert client.post(reverse("rate_item", args=[token]), {"choice": "a"}).status_code == 404
    assert not Judgment.objects.exists()


def test_an_unknown_token_is_a_404_like_any_other():
    _study, (owner, _), _ = open_study(prompts=1)
    client = Client()
    client.force_login(owner)
    assert client.get(reverse("rate_item", args=["x" * 43])).status_code == 404


def test_posts_without_a_csrf_token_are_refused():
    study, (owner, _), _ = open_study(prompts=1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    token = rater_next_assignment(study=study, rater=owner).token
    assert client.post(reverse("rate_item", args=[token]), {"choice": "a"}).status_code == 403
    manager = Client(enforce_csrf_checks=True)
    manager.force_login(ManagerFactory())
    status_url = reverse("study_status", args=[study.pk])
    assert manager.post(status_url, {"status": "closed"}).status_code == 403
    assert not Judgment.objects.exists()
