"""Manager forms: creating a study and adding raters to one."""

from django import forms

from evalhub.models import GOLD_KINDS, System
from evalhub.selectors.studies import study_candidate_raters
from trainer.models import FineTuneRun


class RaterChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, user) -> str:
        return user.get_username() + ("" if user.expert else " (not in the expert group)")


class StudyCreateForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        help_text="Raters see this name: do not put system, run or model names in it.",
    )
    run = forms.ModelChoiceField(
        FineTuneRun.objects.all(), required=False, help_text="The run this study evaluates."
    )
    systems = forms.ModelMultipleChoiceField(
        System.objects.exclude(kind__in=GOLD_KINDS),
        widget=forms.CheckboxSelectMultiple,
        help_text="Two or more. Every pair is compared on every prompt they all answered.",
    )
    prompts = forms.IntegerField(
        required=False, min_value=1, help_text="How many prompts to sample; blank for all."
    )
    raters = RaterChoiceField(
        study_candidate_raters(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Raters can also be added later.",
    )
    overlap = forms.IntegerField(min_value=1, initial=2, help_text="Raters per comparison.")
    criteria = forms.CharField(
        required=False, help_text="Optional 1–5 scores, comma separated: correctness, style"
    )
    guidelines = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6}), help_text="Shown to raters."
    )
    show_reference = forms.BooleanField(required=False, label="Show the reference answer")
    gold = forms.FileField(
        required=False,
        label="Gold comparisons (JSONL)",
        help_text='One {"prompt": …, "better": …, "worse": …} per line; mixed in unseen.',
    )
    open_now = forms.BooleanField(required=False, label="Open it for rating now")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Querysets are evaluated per form, not once at import.
        self.fields["raters"].queryset = study_candidate_raters()

    def clean_criteria(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data["criteria"].split(",") if c.strip()]


class AddRatersForm(forms.Form):
    raters = RaterChoiceField(
        study_candidate_raters(), required=False, widget=forms.CheckboxSelectMultiple
    )
    overlap = forms.IntegerField(
        required=False, min_value=1, help_text="Raise the raters per comparison (optional)."
    )

    def __init__(self, *args, study, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["raters"].queryset = study_candidate_raters(study=study)
