"""Service errors as API errors. The study services raise ``StudyError`` with one of their
message constants filled in; this maps each constant back to the request field it concerns,
so that a refused request is a 400 naming the field, with the service's own message."""

import re

from rest_framework.exceptions import ValidationError

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


_PATTERNS = [(_pattern(template), field) for template, field in _FIELD_OF_MESSAGE.items()]


def study_validation_error(exc: st.StudyError) -> ValidationError:
    message = str(exc)
    for pattern, field in _PATTERNS:
        if pattern.fullmatch(message):
            return ValidationError({field: [message]})
    return ValidationError({"non_field_errors": [message]})
