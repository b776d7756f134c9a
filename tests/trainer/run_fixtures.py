"""Rows and settings for run tests: a colours dataset and a tiny NF4-ready model directory."""

from tests.factories import DatasetFactory, ExampleFactory
from trainer.engine.config import TrainConfig
from trainer.engine.toy import COLOURS, colour_conversation
from trainer.models import FineTuneRun, Split
from trainer.services.runs import RunSpec, run_create

WRONG = {"sky": "red", "grass": "blue", "snow": "black", "blood": "green", "sun": "white"}


def colour_dataset(**fields):
    """Ten training conversations, five validation ones (answers that contradict training,
    so validation loss turns up once the format is learnt), one test conversation."""
    dataset = DatasetFactory(**fields)
    rows = [(colour_conversation(t), Split.TRAIN) for t in COLOURS] * 2
    rows += [(colour_conversation(t, WRONG[t]), Split.VALIDATION) for t in COLOURS]
    rows += [(colour_conversation("sky"), Split.TEST)]
    for index, (messages, split) in enumerate(rows):
        ExampleFactory(dataset=dataset, index=index, messages=messages, split=split)
    return dataset


def small_config(**changes) -> TrainConfig:
    settings = {"rank": 4, "learning_rate": 0.02, "batch_size": 2, "max_steps": 4}
    return TrainConfig(**{**settings, **changes})


def colour_spec(model_dir, **changes) -> RunSpec:
    """A run of the colours dataset on the model in ``model_dir``, ``small_config(**changes)``."""
    return RunSpec(
        dataset=colour_dataset(), config=small_config(**changes), base_model=str(model_dir)
    )


def queued_run(model_dir, **changes) -> FineTuneRun:
    """A queued run of the colours dataset on the model in ``model_dir``."""
    return run_create(spec=colour_spec(model_dir, **changes))
