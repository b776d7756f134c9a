"""Service errors as API errors. The study and preference-set services raise ``StudyError`` or
``PreferenceError`` with one of their message constants filled in; this maps each constant
back to the request field it concerns, so that a refused request is a 400 naming the field,
with the service's own message."""

import re

from rest_framework.exceptions import ValidationError

from evalhub.services import preferences as pr
from evalhub.services import studies as st

_FIELD_OF_MESSAGE = {
    st.ERROR_NAME_EMPTY: "name",
    st.ERROR_NAME_TAKEN: "name",
    st.ERROR_NAME_REVEALS: "name",
    st.ERROR_TOO_FEW_SYSTEMS: "systems",
    st.ERROR_GOLD_SYSTEM_COMPARED: "systems",
    st.ERROR_NO_PROMPTS: "systems",
    st.ERROR_SPLIT: "split",
    st.ERROR_OVERLAP: "overlap",
    st.ERROR_OVERLAP_LOWERED: "overlap",
    st.ERROR_PROMPT_COUNT: "prompts",
    st.ERROR_NOT_ENOUGH_PROMPTS: "prompts",
    st.ERROR_TOO_FEW_RATERS: "raters",
    st.ERROR_INACTIVE_RATER: "raters",
    st.ERROR_CRITERION: "criteria",
    st.ERROR_TOO_MANY_CRITERIA: "criteria",
    st.ERROR_STATUS_UNKNOWN: "status",
    st.ERROR_STATUS_TRANSITION: "status",
    st.ERROR_OPEN_WITHOUT_RATERS: "status",
    st.ERROR_GOLD_NEEDS_REFERENCE: "gold",
    st.ERROR_MARGIN: "equivalence_margin",
    st.ERROR_MIN_GOLD_ACCURACY: "min_gold_accuracy",
    st.ERROR_MIN_MEDIAN_SECONDS: "min_median_seconds",
}


def _pattern(template: str) -> re.Pattern[str]:
    """A message constant as a regex: its fixed text literally, each ``{...}`` as anything."""
    parts = re.split(r"\{[^}]*\}", template)
    return re.compile(".+".join(re.escape(part) for part in parts), re.DOTALL)


# Anything else a build refuses is about the study: its prompts or its judgments.
_FIELD_OF_PREFERENCE_MESSAGE = {
    pr.ERROR_NAME: "name",
    pr.ERROR_DATASET: "name",
    pr.ERROR_VERSION_TAKEN: "name",
    pr.ERROR_SHARE: "validation_share",
}


def _patterns(fields: dict[str, str]) -> list[tuple[re.Pattern[str], str]]:
    return [(_pattern(template), field) for template, field in fields.items()]


_PATTERNS = _patterns(_FIELD_OF_MESSAGE)
_PREFERENCE_PATTERNS = _patterns(_FIELD_OF_PREFERENCE_MESSAGE)


def _validation_error(
    message: str, patterns: list[tuple[re.Pattern[str], str]], default: str
) -> ValidationError:
    for pattern, field in patterns:
        if pattern.fullmatch(message):
            return ValidationError({field: [message]})
    return ValidationError({default: [message]})


def study_validation_error(exc: st.StudyError) -> ValidationError:
    return _validation_error(str(exc), _PATTERNS, "non_field_errors")


def preference_validation_error(exc: pr.PreferenceError) -> ValidationError:
    return _validation_error(str(exc), _PREFERENCE_PATTERNS, "study")
