"""The web's forms as API input. Uploading a dataset and starting a run take the pages' own
forms (``DatasetUploadForm``, ``RunForm``), so the API checks the same fields with the same
messages; a field the request leaves out takes the default the page's form shows.
``form_serializer`` describes those fields to the schema and the browsable API."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.settings import api_settings

NOT_AN_OBJECT = "Invalid data. Expected a dictionary, but got {kind}."


def form_bound(form_class: type[forms.Form], request: Request) -> forms.Form:
    """The form bound to the request body, at the page's defaults for what the body leaves out."""
    data = request.data.dict() if hasattr(request.data, "dict") else request.data
    if not isinstance(data, dict):
        raise ValidationError(
            {api_settings.NON_FIELD_ERRORS_KEY: [NOT_AN_OBJECT.format(kind=type(data).__name__)]}
        )
    defaults = {
        name: field.initial
        for name, field in form_class().fields.items()
        if field.initial is not None
    }
    return form_class({**defaults, **data}, request.FILES)


def form_validation_error(form: forms.Form) -> ValidationError:
    """The form's errors as a 400, each under its field's name (the form's own messages)."""
    rename = {NON_FIELD_ERRORS: api_settings.NON_FIELD_ERRORS_KEY}
    return ValidationError(
        {rename.get(name, name): list(messages) for name, messages in form.errors.items()}
    )


def _serializer_field(field: forms.Field) -> serializers.Field:
    options: dict = {"help_text": str(field.help_text) or None}
    if field.initial is not None:
        options.update(required=False, default=field.initial)
    elif not field.required:
        options.update(required=False)
    # Subclasses before their bases: a ModelChoiceField is a ChoiceField, a FloatField an
    # IntegerField, a SlugField a CharField.
    if isinstance(field, forms.FileField):
        return serializers.FileField(**options)
    if isinstance(field, forms.ModelChoiceField):
        return serializers.CharField(**options)
    if isinstance(field, forms.ChoiceField):
        return serializers.ChoiceField(choices=field.choices, **options)
    if isinstance(field, forms.BooleanField):
        return serializers.BooleanField(**options)
    if isinstance(field, forms.FloatField):
        return serializers.FloatField(**options)
    if isinstance(field, forms.IntegerField):
        return serializers.IntegerField(allow_null=not field.required, **options)
    if isinstance(field, forms.CharField):
        return serializers.CharField(
            max_length=field.max_length, allow_blank=not field.required, **options
        )
    raise TypeError(f"no API field for the form field {type(field).__name__}")


def form_serializer(form_class: type[forms.Form], *, name: str) -> type[serializers.Serializer]:
    """A serializer with the form's fields, defaults and help, for the schema (not for checks:
    the form itself checks the request, through ``form_bound``)."""
    fields = {
        field_name: _serializer_field(field) for field_name, field in form_class().fields.items()
    }
    return type(name, (serializers.Serializer,), fields)
