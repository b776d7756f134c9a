"""What the user tells the readers: the format, and which fields hold the prompt and answer."""

from dataclasses import dataclass

AUTO = "auto"
# Where no field is named, CSV files look for these columns (and JSON records may use them).
PROMPT, RESPONSE, SYSTEM, MESSAGES_FIELD, SPLIT_FIELD = (
    "prompt",
    "response",
    "system",
    "messages",
    "split",
)


@dataclass(frozen=True)
class ReadOptions:
    """``None`` for a field means "the layout's own": detected from the records, or the
    defaults above for CSV columns. Naming a field makes JSON and Parquet records read it."""

    format: str = AUTO
    prompt_field: str | None = None
    response_field: str | None = None
    system_field: str | None = None
    messages_field: str | None = None

    @property
    def maps_fields(self) -> bool:
        return bool(self.prompt_field or self.response_field)

    @property
    def named_fields(self) -> tuple[str, ...]:
        """The fields the user named, which a table must have as columns."""
        named = (self.prompt_field, self.response_field, self.system_field, self.messages_field)
        return tuple(field for field in named if field)
