"""Manager forms: planning a study, creating one and adding raters to one."""

from django import forms

from evalhub.analysis.rater_quality import DEFAULT_MIN_GOLD_ACCURACY, DEFAULT_MIN_MEDIAN_SECONDS
from evalhub.analysis.sequential import DEFAULT_MARGIN
from evalhub.models import GOLD_KINDS, Allocation, System
from evalhub.selectors.people import active_expert_count
from evalhub.selectors.studies import study_candidate_raters
from trainer.models import FineTuneRun, Split

DEFAULT_OVERLAP = 2
STUDY_SPLITS = [(Split.TEST, "test"), (Split.FEEDBACK, "feedback")]


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
    split = forms.ChoiceField(
        choices=STUDY_SPLITS,
        required=False,
        initial=Split.TEST,
        label="Prompts from the split",
        help_text="test: the judgments decide and never train. feedback: the judgments may "
        "train the next adapter (a preference set built from this study).",
    )
    raters = RaterChoiceField(
        study_candidate_raters(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Raters can also be added later.",
    )
    overlap = forms.IntegerField(min_value=1, help_text="Raters per comparison.")
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
    stop_when_decided = forms.BooleanField(
        required=False,
        label="Stop by itself when decided",
        help_text="Pause the study, and tell the raters it is complete, as soon as the "
        "always-valid verdict is reached.",
    )
    allocation = forms.ChoiceField(
        choices=Allocation.choices,
        required=False,
        initial=Allocation.UNIFORM,
        label="Allocation",
        help_text="Adaptive (experimental): each rater's next item is drawn where a judgment is "
        "expected to say most, and the metric, calibrated on the judgments so far, takes out "
        "what it predicts. Its verdict is as valid as the uniform one's. In simulation it "
        "needed 64–82 % of uniform's judgments when the metric foresaw the experts on four "
        "prompts in five and most prompts were clear-cut, and about as many (91–105 %) when "
        "every prompt was close to a coin flip. Two systems only; never more judgments than "
        "prompts × overlap.",
    )
    raters_at_large = forms.BooleanField(
        required=False,
        label="Verdict about raters at large",
        help_text="By default the verdict is about these raters. Ticked, it also allows for "
        "how much raters differ, to speak for raters beyond the panel: needs 5 or more raters "
        "and many more judgments.",
    )
    equivalence_margin = forms.FloatField(
        required=False,
        min_value=0,
        max_value=0.49,
        initial=DEFAULT_MARGIN,
        help_text="Win rates within 50 % ± this margin count as equivalent; 0 for no such verdict.",
    )
    min_gold_accuracy = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        initial=DEFAULT_MIN_GOLD_ACCURACY,
        label="Minimum gold accuracy",
        help_text="A rater with a lower share of gold items right, once they have judged 3, is "
        "left out of the verdict (the report shows it with and without them); 0 checks nothing.",
    )
    min_median_seconds = forms.FloatField(
        required=False,
        min_value=0,
        initial=DEFAULT_MIN_MEDIAN_SECONDS,
        label="Minimum median seconds per item",
        help_text="A rater who takes less than this per item, by the median, is left out of "
        "the verdict; 0 checks nothing.",
    )
    open_now = forms.BooleanField(required=False, label="Open it for rating now")

    def clean_allocation(self) -> str:
        return self.cleaned_data["allocation"] or Allocation.UNIFORM

    def clean_split(self) -> str:
        return self.cleaned_data["split"] or Split.TEST

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Querysets are evaluated per form, not once at import.
        self.fields["raters"].queryset = study_candidate_raters()
        # Two raters per comparison, or as many as there are experts: a default the study can
        # meet. Shown on the page, with a way to add experts when there are none.
        self.expert_count = active_expert_count()
        self.fields["overlap"].initial = max(1, min(DEFAULT_OVERLAP, self.expert_count))

    def clean_equivalence_margin(self) -> float:
        margin = self.cleaned_data["equivalence_margin"]
        return DEFAULT_MARGIN if margin is None else margin

    def clean_min_gold_accuracy(self) -> float:
        value = self.cleaned_data["min_gold_accuracy"]
        return DEFAULT_MIN_GOLD_ACCURACY if value is None else value

    def clean_min_median_seconds(self) -> float:
        value = self.cleaned_data["min_median_seconds"]
        return DEFAULT_MIN_MEDIAN_SECONDS if value is None else value

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


class StudyPlanForm(forms.Form):
    """The planner's inputs; ranges are checked by ``evalhub.analysis.planning`` itself, which
    names the field it refuses."""

    win_rate = forms.FloatField(
        initial=0.6, help_text="The adapter's share of decisive judgments worth detecting."
    )
    tie_rate = forms.FloatField(initial=0.2, help_text="Expected share of ties and both-bad.")
    power = forms.FloatField(initial=0.8, help_text="Chance of detecting that win rate.")
    alpha = forms.FloatField(initial=0.05, help_text="Two-sided error rate.")
    overlap = forms.IntegerField(initial=2, help_text="Raters per comparison.")
    raters = forms.IntegerField(required=False, help_text="Blank: as many as the overlap.")
    raters_at_large = forms.BooleanField(
        required=False,
        label="Verdict about raters at large",
        help_text="Size for a verdict that speaks for raters beyond the study's own.",
    )
