"""The dataset upload form: the file, its name, the split and how to read the records."""

from django import forms
from django.core.files.uploadedfile import UploadedFile

from trainer.datasets import AUTO, FORMATS, InvalidSplit, ReadOptions, parse_ratios
from trainer.datasets.split import Ratios
from trainer.services.datasets import ImportSpec

# Parquet files of fine-tuning sets run to a few hundred MB; anything larger belongs on the
# command line (import_dataset), which streams from disk without an HTTP upload.
MAX_UPLOAD_MB = 512
UPLOAD_TOO_LARGE = (
    "the file is {size_mb:.0f} MB; the upload takes at most {limit} MB (use import_dataset)"
)
FIELD_HELP = "JSON or Parquet field (CSV column); blank: detected"


class DatasetUploadForm(forms.Form):
    file = forms.FileField(
        help_text=f"JSONL, JSON array, CSV/TSV, a transcript or Parquet; at most {MAX_UPLOAD_MB} MB"
    )
    name = forms.SlugField(max_length=100, help_text="letters, digits, - and _")
    format = forms.ChoiceField(choices=[(f, f) for f in (AUTO, *FORMATS)], initial=AUTO)
    split = forms.CharField(
        initial="0.8,0.1,0.1",
        help_text="train,validation,test shares, or train,validation,feedback,test such as "
        "0.7,0.1,0.1,0.1 (feedback prompts go to studies whose judgments may train)",
    )
    seed = forms.IntegerField(initial=0)
    strict = forms.BooleanField(required=False, help_text="refuse on warnings too")
    prompt_field = forms.CharField(required=False, help_text=FIELD_HELP + " ('prompt' in CSV)")
    response_field = forms.CharField(required=False, help_text=FIELD_HELP + " ('response' in CSV)")
    system_field = forms.CharField(required=False, help_text=FIELD_HELP + " ('system')")
    messages_field = forms.CharField(
        required=False, help_text="field holding a list of role/content turns; blank: detected"
    )

    def clean_file(self) -> UploadedFile:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_MB << 20:
            raise forms.ValidationError(
                UPLOAD_TOO_LARGE.format(size_mb=upload.size / (1 << 20), limit=MAX_UPLOAD_MB)
            )
        return upload

    def clean_split(self) -> Ratios:
        try:
            return parse_ratios(self.cleaned_data["split"])
        except InvalidSplit as error:
            raise forms.ValidationError(str(error)) from None

    def import_spec(self) -> ImportSpec:
        """How the upload is read, linted and split: the same for the page and the API."""
        data = self.cleaned_data
        options = ReadOptions(
            format=data["format"],
            prompt_field=data["prompt_field"].strip() or None,
            response_field=data["response_field"].strip() or None,
            system_field=data["system_field"].strip() or None,
            messages_field=data["messages_field"].strip() or None,
        )
        return ImportSpec(
            options=options, split=data["split"], seed=data["seed"], strict=data["strict"]
        )
