"""Builders for study and rating tests: a run with base and adapter outputs, and studies on it.

Names are distinctive on purpose: the blinding tests search pages for them.
"""

from dataclasses import dataclass

from evalhub.models import Prompt, StudyStatus, System, SystemKind
from evalhub.services.studies import study_create, study_set_status
from evalhub.services.systems import system_get_or_create
from tests.factories import (
    BaseModelFactory,
    DatasetFactory,
    ExampleFactory,
    ExpertFactory,
    FineTuneRunFactory,
    OutputFactory,
    PromptFactory,
)

MODEL_NAME = "quokka-model-7b"


@dataclass
class RunOutputs:
    run: object
    base: System
    adapter: System
    prompts: list[Prompt]

    @property
    def systems(self) -> list[System]:
        return [self.base, self.adapter]


def run_with_outputs(
    prompts: int = 4, run_name: str = "zebra-run", split: str | None = None
) -> RunOutputs:
    """A run whose base and adapter systems both answered ``prompts`` prompts; with ``split``,
    each prompt stands for an example of that split of the run's dataset."""
    base_model = BaseModelFactory(name=MODEL_NAME, source=MODEL_NAME)
    dataset = DatasetFactory()
    run = FineTuneRunFactory(name=run_name, dataset=dataset, base_model=base_model)
    base = system_get_or_create(run=run, kind=SystemKind.BASE)
    adapter = system_get_or_create(run=run, kind=SystemKind.ADAPTER)
    made = []
    for i in range(prompts):
        question = [{"role": "user", "content": f"Question number {i}?"}]
        example = None
        if split is not None:
            answer = {"role": "assistant", "content": f"Reference {i}."}
            example = ExampleFactory(dataset=dataset, split=split, messages=[*question, answer])
        prompt = PromptFactory(dataset=dataset, example=example, messages=question)
        OutputFactory(system=base, prompt=prompt, text=f"An answer to question {i}.")
        OutputFactory(system=adapter, prompt=prompt, text=f"Another answer to question {i}.")
        made.append(prompt)
    return RunOutputs(run=run, base=base, adapter=adapter, prompts=made)


def open_study(prompts: int = 4, raters: int = 2, overlap: int = 2, **kwargs):
    """An open study on a fresh run, with expert raters; returns (study, raters, run outputs)."""
    outputs = run_with_outputs(prompts)
    experts = [ExpertFactory() for _ in range(raters)]
    study = study_create(
        name=kwargs.pop("name", "Support answers"),
        systems=outputs.systems,
        raters=experts,
        overlap=overlap,
        run=outputs.run,
        seed=kwargs.pop("seed", 11),
        **kwargs,
    )
    study = study_set_status(study=study, status=StudyStatus.OPEN)
    return study, experts, outputs
