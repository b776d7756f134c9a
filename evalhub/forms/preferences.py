"""The form that builds a preference set from a study (on the study page)."""

from django import forms

from evalhub.services.preferences import MAX_VALIDATION_SHARE


class PreferenceSetBuildForm(forms.Form):
    name = forms.CharField(
        max_length=80,
        help_text="Letters, digits, - and _; building the same name again makes its next version.",
    )
    validation_share = forms.FloatField(
        min_value=0,
        max_value=MAX_VALIDATION_SHARE,
        initial=0.1,
        help_text="Share of rows held out (by prompt) for DPO's early stopping.",
    )
    seed = forms.IntegerField(initial=0, help_text="Seed of the held-out draw.")
    correction_pairs = forms.BooleanField(
        required=False,
        initial=True,
        label="Corrections also make pairs",
        help_text="A rater's better answer is chosen over each answer they saw, besides its SFT "
        "row.",
    )
