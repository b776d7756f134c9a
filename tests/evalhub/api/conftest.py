"""A small study world with distinctive names, so that blinding tests can search the JSON for
anything that would identify a system, a run or a model."""

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from evalhub import models as ev
from tests import factories as f

SECRET_NAMES = (
    "zebra-base-system",
    "quokka-adapter-system",
    "narwhal-run",
    "axolotl-basemodel",
)


@dataclass
class World:
    study: ev.Study
    base: ev.System
    adapter: ev.System
    comparison: ev.Comparison
    gold: ev.Comparison
    mine: ev.Assignment  # the expert's, not yet judged
    mine_gold: ev.Assignment
    theirs: ev.Assignment  # the other expert's, judged
    judgment: ev.Judgment
    expert: object
    other_expert: object
    manager: object


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle counters live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def other_expert(db):
    return f.ExpertFactory()


@pytest.fixture
def world(expert, other_expert, manager) -> World:
    base_model = f.BaseModelFactory(name="axolotl-basemodel", source="axolotl-basemodel")
    run = f.FineTuneRunFactory(name="narwhal-run", base_model=base_model)
    base = f.SystemFactory(name="zebra-base-system", kind=ev.SystemKind.BASE, base_model=base_model)
    adapter = f.SystemFactory(name="quokka-adapter-system", kind=ev.SystemKind.ADAPTER, run=run)
    study = f.StudyFactory(
        name="Tone study",
        run=run,
        criteria=["correctness", "style"],
        guidelines="Prefer the answer a nurse would give.",
        show_reference=True,
    )
    study.systems.set([base, adapter])

    def comparison(**kwargs) -> ev.Comparison:
        prompt = f.PromptFactory(dataset=run.dataset)
        return f.ComparisonFactory(
            study=study,
            prompt=prompt,
            output_a=f.OutputFactory(system=base, prompt=prompt, metrics={"rouge1": 0.25}),
            output_b=f.OutputFactory(system=adapter, prompt=prompt, metrics={"rouge1": 0.75}),
            **kwargs,
        )

    plain = comparison()
    gold = comparison(is_gold=True, gold_answer=ev.GoldAnswer.B)
    # The expert sees the adapter's output on the left, so "a" means the adapter for them.
    mine = f.AssignmentFactory(comparison=plain, rater=expert, left_output=plain.output_b)
    mine_gold = f.AssignmentFactory(comparison=gold, rater=expert, left_output=gold.output_a)
    theirs = f.AssignmentFactory(comparison=plain, rater=other_expert, left_output=plain.output_a)
    judgment = f.JudgmentFactory(
        assignment=theirs,
        choice=ev.Choice.B,
        comment="other rater's private comment",
        correction="other rater's private answer",
    )
    return World(
        study=study,
        base=base,
        adapter=adapter,
        comparison=plain,
        gold=gold,
        mine=mine,
        mine_gold=mine_gold,
        theirs=theirs,
        judgment=judgment,
        expert=expert,
        other_expert=other_expert,
        manager=manager,
    )


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def login(api):
    """``login(user)`` → an APIClient with that user's session (``None`` stays anonymous)."""

    def as_user(user) -> APIClient:
        if user is not None:
            api.force_login(user)
        return api

    return as_user
