"""The reviewer's form: a final call in the reviewer's terms (A = the left response) and an
optional note."""

from django import forms

from evalhub.forms.rating import CHOICE_BUTTONS
from evalhub.services.adjudication import ERROR_FINAL_CALL, ERROR_NOTE_LONG, MAX_NOTE


class FinalCallForm(forms.Form):
    choice = forms.ChoiceField(
        label="Final call",
        choices=[(value, label) for value, label, _ in CHOICE_BUTTONS],
        error_messages={"required": ERROR_FINAL_CALL, "invalid_choice": ERROR_FINAL_CALL},
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=MAX_NOTE,
        widget=forms.Textarea,
        error_messages={"max_length": ERROR_NOTE_LONG.format(limit=MAX_NOTE)},
    )
