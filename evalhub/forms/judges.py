"""The New judge form, on the Judges page and as ``POST /api/judges/``. It only reads the
fields as types; every rule on them is ``judge_create``'s, the same that ``judge_add`` applies,
and its refusal comes back under the field it names."""

from django import forms

from evalhub.models import Judge, JudgeBackend


def _model_default(name: str):
    return Judge._meta.get_field(name).default


def _text(name: str, help_text: str, **options) -> forms.CharField:
    return forms.CharField(
        max_length=Judge._meta.get_field(name).max_length, help_text=help_text, **options
    )


class JudgeForm(forms.Form):
    name = _text("name", "A slug, e.g. qwen-72b")
    backend = forms.ChoiceField(
        choices=JudgeBackend.choices,
        initial=JudgeBackend.LOCAL,
        help_text="local: the model runs on the gpu worker; http: an OpenAI-compatible endpoint",
    )
    model = _text(
        "model",
        "local: smollm2-135m, a directory or a hub id; http: the served model name",
        initial=_model_default("model"),
        required=False,
    )
    base_url = _text(
        "base_url", "http only: the base URL, e.g. http://gpu-box:8000/v1", required=False
    )
    api_key_env = _text(
        "api_key_env",
        "http only: the NAME of the environment variable holding the key (never the key)",
        required=False,
    )
    template = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Blank: the built-in pairwise prompt; may use {prompt}, {answer_a}, "
        "{answer_b}, {criteria}, {guidelines}, {reference}",
    )
    use_reference = forms.BooleanField(
        required=False, initial=False, help_text="Show the reference answer"
    )
    max_tokens = forms.IntegerField(initial=_model_default("max_tokens"))
    temperature = forms.FloatField(initial=_model_default("temperature"))
    timeout_s = forms.FloatField(initial=_model_default("timeout_s"), help_text="Per call")
    max_retries = forms.IntegerField(initial=_model_default("max_retries"))
    concurrency = forms.IntegerField(
        initial=_model_default("concurrency"), help_text="Calls in flight"
    )
    token_budget = forms.IntegerField(
        initial=_model_default("token_budget"), help_text="Tokens per study; 0 = no limit"
    )
