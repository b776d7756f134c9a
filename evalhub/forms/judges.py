"""The New judge form, on the Judges page and as ``POST /api/judges/``. It only reads the
fields as types; every rule on them is ``judge_create``'s, the same that ``judge_add`` applies,
and its refusal comes back under the field it names."""

from django import forms

from evalhub.models import Judge, JudgeBackend


def _model_default(name: str):
    return Judge._meta.get_field(name).default


class JudgeForm(forms.Form):
    name = forms.CharField(help_text="A slug, e.g. qwen-72b")
    backend = forms.ChoiceField(
        choices=JudgeBackend.choices,
        initial=JudgeBackend.LOCAL,
        help_text="local: the model runs on the gpu worker; http: an OpenAI-compatible endpoint",
    )
    model = forms.CharField(
        initial=_model_default("model"),
        required=False,
        help_text="local: smollm2-135m, a directory or a hub id; http: the served model name",
    )
    base_url = forms.CharField(
        required=False, help_text="http only: the base URL, e.g. http://gpu-box:8000/v1"
    )
    api_key_env = forms.CharField(
        required=False,
        help_text="http only: the NAME of the environment variable holding the key (never the key)",
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
