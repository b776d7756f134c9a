"""factory_boy factories for every model; tests build exactly the rows they need."""

import hashlib
import secrets

import factory
from django.contrib.auth import get_user_model

from evalhub import models as ev
from evalhub.roles import expert_group, reviewer_group
from trainer import models as tr


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class ManagerFactory(UserFactory):
    username = factory.Sequence(lambda n: f"manager{n}")
    is_staff = True


class ExpertFactory(UserFactory):
    username = factory.Sequence(lambda n: f"expert{n}")

    @factory.post_generation
    def expert_role(self, create, extracted, **kwargs):
        if create:
            self.groups.add(expert_group())


class ReviewerFactory(UserFactory):
    username = factory.Sequence(lambda n: f"reviewer{n}")

    @factory.post_generation
    def reviewer_role(self, create, extracted, **kwargs):
        if create:
            self.groups.add(reviewer_group())


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = tr.Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")
    format = "messages"
    content_hash = factory.LazyAttribute(lambda o: _hash(o.name))
    split_ratios = [0.8, 0.1, 0.1]


class ExampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = tr.Example

    dataset = factory.SubFactory(DatasetFactory)
    index = factory.Sequence(int)
    source_line = factory.LazyAttribute(lambda o: o.index + 1)
    messages = factory.LazyAttribute(
        lambda o: [
            {"role": "user", "content": f"question {o.index}"},
            {"role": "assistant", "content": f"answer {o.index}"},
        ]
    )
    split = tr.Split.TRAIN
    content_hash = factory.LazyAttribute(lambda o: _hash(str(o.messages)))


def held_out_questions(dataset: tr.Dataset, questions: list[str]) -> None:
    """A test-split example asking each question (its reference ``answer {i}``) and one
    training example, which the held-out prompts must leave out."""
    for i, question in enumerate(questions):
        ExampleFactory(
            dataset=dataset,
            split=tr.Split.TEST,
            messages=[
                {"role": "user", "content": question},
                {"role": "assistant", "content": f"answer {i}"},
            ],
        )
    ExampleFactory(dataset=dataset, split=tr.Split.TRAIN)


class BaseModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = tr.BaseModel
        django_get_or_create = ("name",)

    name = "smollm2-135m"
    source = "smollm2-135m"


class FineTuneRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = tr.FineTuneRun

    name = factory.Sequence(lambda n: f"run-{n}")
    dataset = factory.SubFactory(DatasetFactory)
    base_model = factory.SubFactory(BaseModelFactory)
    hyperparameters = {"rank": 16, "alpha": 32, "learning_rate": 2e-4}


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ev.System

    name = factory.Sequence(lambda n: f"system-{n}")
    kind = ev.SystemKind.IMPORTED


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ev.Prompt

    dataset = factory.SubFactory(DatasetFactory)
    messages = factory.Sequence(lambda n: [{"role": "user", "content": f"prompt {n}"}])
    reference = factory.Sequence(lambda n: f"reference answer {n}")


class OutputFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ev.Output

    system = factory.SubFactory(SystemFactory)
    prompt = factory.SubFactory(PromptFactory)
    text = factory.Sequence(lambda n: f"output text {n}")


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ev.Study

    name = factory.Sequence(lambda n: f"study-{n}")
    status = ev.StudyStatus.OPEN


class ComparisonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ev.Comparison

    study = factory.SubFactory(StudyFactory)
    prompt = factory.SubFactory(PromptFactory)
    output_a = factory.SubFactory(OutputFactory, prompt=factory.SelfAttribute("..prompt"))
    output_b = factory.SubFactory(OutputFactory, prompt=factory.SelfAttribute("..prompt"))


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ev.Assignment

    comparison = factory.SubFactory(ComparisonFactory)
    rater = factory.SubFactory(ExpertFactory)
    left_output = factory.SelfAttribute("comparison.output_a")
    position = factory.Sequence(int)
    token = factory.LazyFunction(lambda: secrets.token_urlsafe(24))


class JudgmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ev.Judgment

    assignment = factory.SubFactory(AssignmentFactory)
    choice = ev.Choice.A


class JudgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ev.Judge

    name = factory.Sequence(lambda n: f"judge-{n}")


class JudgeVerdictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ev.JudgeVerdict

    judge = factory.SubFactory(JudgeFactory)
    comparison = factory.SubFactory(ComparisonFactory)
    order = ev.JudgeOrder.AB
    choice = ev.GoldAnswer.A
