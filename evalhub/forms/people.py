"""Manager form: a new account."""

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator

ROLE_EXPERT = "expert"
ROLE_REVIEWER = "reviewer"
ROLE_MANAGER = "manager"


class PersonCreateForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only. Other experts never see it.",
    )
    email = forms.EmailField(required=False, help_text="Optional; nothing is sent to it.")
    role = forms.ChoiceField(
        choices=[
            (ROLE_EXPERT, "Expert: rates the studies they are added to, blinded"),
            (
                ROLE_REVIEWER,
                "Reviewer: settles the comparisons where raters split or flagged one, blinded",
            ),
            (ROLE_MANAGER, "Manager: sees and runs everything"),
        ],
        initial=ROLE_EXPERT,
        widget=forms.RadioSelect,
    )
