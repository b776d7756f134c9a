"""The "New run" form: dataset, base model and every training setting, pre-filled with the
engine's defaults and explained by the config dataclass's own help text."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from django import forms

from trainer.engine.config import DPO_DEFAULTS, FIELD_CHOICES, ConfigError, TrainConfig
from trainer.engine.model_store import DEFAULT_BASE_MODEL, ModelNotFound, check_model_spec
from trainer.models import Dataset, DatasetKind, FineTuneRun, RunStatus
from trainer.services.runs import RunSpec

# Shown open; everything else goes in the "advanced" fold.
MAIN_SETTINGS = (
    "method",
    "rank",
    "alpha",
    "learning_rate",
    "epochs",
    "batch_size",
    "max_steps",
    "beta",
)
FROM_RUN_HELP = (
    "start from this run's adapter (its rank, alpha, target modules and base model); DPO "
    "needs one, and uses it as its reference"
)
NAME_TAKEN = "Name {name!r} is another run's already; run names are unique"
BASE_MODEL_HELP = (
    "smollm2-135m is the packaged SmolLM2-135M-Instruct (no network needed); or a local model "
    "directory, or a hub id"
)


class DatasetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Dataset) -> str:
        if obj.kind == DatasetKind.PREFERENCES:
            return f"{obj.name} (preference set)"
        return f"{obj.name} ({obj.lint_errors} lint errors, {obj.lint_warnings} warnings)"


class RunChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: FineTuneRun) -> str:
        return f"run {obj.pk}: {obj.name} ({obj.get_method_display()})"


def _setting_field(name: str, kind: str, default: Any, help_text: str) -> forms.Field:
    label = name.replace("_", " ").capitalize()
    if name in FIELD_CHOICES:
        return forms.ChoiceField(
            label=label,
            choices=[(c, c) for c in FIELD_CHOICES[name]],
            initial=default,
            help_text=help_text,
        )
    if kind.startswith("int"):
        # alpha is "int | None": left empty it becomes 2 × rank.
        optional = default is None
        widget = forms.NumberInput(attrs={"placeholder": "2 × rank"} if optional else {})
        return forms.IntegerField(
            label=label,
            initial=default,
            required=not optional,
            help_text=help_text,
            widget=widget,
        )
    if kind == "float":
        return forms.FloatField(
            label=label,
            initial=default,
            help_text=help_text,
            widget=forms.NumberInput(attrs={"step": "any"}),
        )
    return forms.CharField(label=label, initial=default, help_text=help_text)


def initial_from_run(run: FineTuneRun) -> dict[str, Any]:
    """The form's values for training ``run`` again with changes: its dataset, base model and
    every setting it stored (one added to the engine since starts at its default). An alpha of
    2 × rank, the default, stays empty, so it follows the rank if that is changed."""
    settings = dict(run.hyperparameters)
    if settings.get("alpha") is not None and settings.get("alpha") == 2 * settings.get("rank", 0):
        settings["alpha"] = None
    return {
        **settings,
        "dataset": run.dataset.name,
        "base_model": run.base_model.source,
        "from_run": run.from_run_id,
    }


def setting_fields() -> dict[str, forms.Field]:
    """One form field per TrainConfig setting, in the dataclass's order."""
    made = {}
    for spec in fields(TrainConfig):
        default = None if spec.default is MISSING else spec.default
        made[spec.name] = _setting_field(
            spec.name, str(spec.type), default, spec.metadata.get("help", "")
        )
    return made


class RunForm(forms.Form):
    config: TrainConfig  # set by clean() once every setting is valid

    dataset = DatasetChoiceField(
        queryset=Dataset.objects.order_by("name"),
        to_field_name="name",
        help_text="trained on its train split; validation for early stopping; test held out",
    )
    base_model = forms.CharField(
        initial=DEFAULT_BASE_MODEL, max_length=500, help_text=BASE_MODEL_HELP
    )
    from_run = RunChoiceField(
        queryset=FineTuneRun.objects.filter(status=RunStatus.SUCCEEDED)
        .exclude(adapter_path="")
        .order_by("-created_at"),
        required=False,
        label="Start from run",
        help_text=FROM_RUN_HELP,
    )
    name = forms.CharField(
        required=False, max_length=200, help_text="default: dataset, rank and time"
    )
    force = forms.BooleanField(
        required=False,
        label="Train despite lint errors",
        help_text="only if you have read the lint report and the errors do not matter here",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(setting_fields())

    @property
    def main_settings(self) -> list[forms.BoundField]:
        return [self[name] for name in MAIN_SETTINGS]

    @property
    def advanced_settings(self) -> list[forms.BoundField]:
        return [self[f.name] for f in fields(TrainConfig) if f.name not in MAIN_SETTINGS]

    def clean_base_model(self) -> str:
        spec = self.cleaned_data["base_model"].strip()
        try:
            check_model_spec(spec)
        except ModelNotFound as error:
            raise forms.ValidationError(str(error)) from None
        return spec

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if name and FineTuneRun.objects.filter(name=name).exists():
            raise forms.ValidationError(NAME_TAKEN.format(name=name))
        return name

    def clean(self) -> dict[str, Any]:
        """Each setting is checked on its own first, so every bad one gets its message, named
        by its label; TrainConfig itself stops at the first (its messages, for the command
        line, name the code's field)."""
        cleaned = super().clean()
        names = [f.name for f in fields(TrainConfig)]
        for name in names:
            if name in self.errors:
                continue
            try:
                TrainConfig(**{name: cleaned.get(name)})
            except ConfigError as error:
                self.add_error(name, self._labelled(str(error)))
        if any(name in self.errors for name in names):
            return cleaned
        try:
            self.config = TrainConfig.for_method(cleaned["method"], **self._chosen(names))
        except ConfigError as error:
            # Every ConfigError message starts with the setting it is about.
            first = str(error).split(" ", 1)[0]
            self.add_error(first if first in names else None, self._labelled(str(error)))
        return cleaned

    def _chosen(self, names: list[str]) -> dict[str, Any]:
        """Every setting but the method; one that has a DPO default and was left at the form's
        (SFT) default takes the method's default instead."""
        return {
            name: self.cleaned_data.get(name)
            for name in names
            if name != "method" and (name not in DPO_DEFAULTS or name in self.changed_data)
        }

    def run_spec(self) -> RunSpec:
        """The run to queue, once the form is valid: the same for the page and the API."""
        data = self.cleaned_data
        return RunSpec(
            dataset=data["dataset"],
            config=self.config,
            base_model=data["base_model"],
            name=data["name"],
            force=data["force"],
            from_run=data["from_run"],
        )

    def _labelled(self, message: str) -> str:
        """The message with its leading field name (``learning_rate``) as the form's label."""
        name, _, rest = message.partition(" ")
        if name in self.fields and rest:
            return f"{self.fields[name].label} {rest}"
        return message
