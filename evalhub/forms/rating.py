"""The rating form: a choice in the rater's terms (A = left), optional 1–5 scores per criterion,
a comment, an optional better answer of the rater's own (``correction``), a flag, and the time
on task that rate.js measures. The "Flag and skip" button sends ``skip`` instead of a choice:
the item is flagged, with its reason, and no side chosen."""

from django import forms

from evalhub.models import Choice, Judgment
from evalhub.services.judgments import (
    ERROR_CHOICE,
    ERROR_SKIP_REASON,
    MAX_COMMENT,
    MAX_CORRECTION,
    MAX_FLAG_REASON,
    correction_too_long,
)

# (value, label, keyboard key): the order is the one the keys 1–4 follow.
CHOICE_BUTTONS = [
    (Choice.A.value, "A is better", "1"),
    (Choice.B.value, "B is better", "2"),
    (Choice.TIE.value, "Tie", "3"),
    (Choice.BOTH_BAD.value, "Both bad", "4"),
]
CHOICE_LABELS = {value: label for value, label, _ in CHOICE_BUTTONS} | {
    Choice.SKIP.value: "Skipped"
}
SCORE_CHOICES = [("", "–")] + [(str(n), str(n)) for n in range(1, 6)]
SIDES = ("a", "b")


class JudgmentForm(forms.Form):
    # Required unless the rater skips; ``clean`` says so with the same message.
    choice = forms.ChoiceField(
        required=False,
        choices=[(value, label) for value, label, _ in CHOICE_BUTTONS],
        error_messages={"invalid_choice": ERROR_CHOICE},
    )
    comment = forms.CharField(required=False, max_length=MAX_COMMENT, widget=forms.Textarea)
    # No max_length: ``clean_correction`` refuses a long one with the service's message, which
    # names the field and the length (the page lists errors without their field's label).
    correction = forms.CharField(
        required=False,
        widget=forms.Textarea,
        help_text=f"Your own answer to the prompt, as it should read. Up to {MAX_CORRECTION:,} "
        "characters; it is kept with your judgment.",
    )
    flagged = forms.BooleanField(required=False)
    flag_reason = forms.CharField(required=False, max_length=MAX_FLAG_REASON)
    skip = forms.BooleanField(required=False)
    # Filled by rate.js; anything that is not a whole number is simply not recorded.
    time_on_task_ms = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, criteria: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = list(criteria)
        for index, name in enumerate(self.criteria):
            for side in SIDES:
                self.fields[f"score-{index}-{side}"] = forms.TypedChoiceField(
                    choices=SCORE_CHOICES,
                    coerce=int,
                    empty_value=None,
                    required=False,
                    label=f"{name}, response {side.upper()}",
                    widget=forms.Select(attrs={"aria-label": f"{name}, response {side.upper()}"}),
                )

    @classmethod
    def initial_for(cls, judgment: Judgment | None, criteria: list[str]) -> dict:
        """The form's initial values from a stored judgment, for revising it."""
        if judgment is None:
            return {}
        initial = {
            "choice": judgment.choice,
            "comment": judgment.comment,
            "correction": judgment.correction,
            "flagged": judgment.flagged,
            "flag_reason": judgment.flag_reason,
        }
        for index, name in enumerate(criteria):
            for side, value in judgment.criterion_scores.get(name, {}).items():
                initial[f"score-{index}-{side}"] = str(value)
        return initial

    def clean(self) -> dict:
        """A skip becomes the choice SKIP, flagged, and needs its reason (``judgment_submit``'s
        rule, checked here too so that the message sits on the reason's field)."""
        data = super().clean()
        if data.get("skip"):
            data["choice"], data["flagged"] = Choice.SKIP.value, True
            if not data.get("flag_reason", "").strip():
                self.add_error("flag_reason", ERROR_SKIP_REASON)
        elif "choice" in data and not data["choice"]:
            self.add_error("choice", ERROR_CHOICE)
        return data

    def clean_correction(self) -> str:
        correction = self.cleaned_data.get("correction", "")
        if len(correction) > MAX_CORRECTION:
            raise forms.ValidationError(correction_too_long(correction))
        return correction

    def clean_time_on_task_ms(self) -> int | None:
        value = self.cleaned_data.get("time_on_task_ms", "")
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return None

    def score_rows(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [
            (name, self[f"score-{index}-a"], self[f"score-{index}-b"])
            for index, name in enumerate(self.criteria)
        ]

    def criterion_scores(self) -> dict[str, dict[str, int]]:
        scores: dict[str, dict[str, int]] = {}
        for index, name in enumerate(self.criteria):
            for side in SIDES:
                value = self.cleaned_data.get(f"score-{index}-{side}")
                if value is not None:
                    scores.setdefault(name, {})[side] = value
        return scores
