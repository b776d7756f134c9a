"""Training data model: datasets and their examples, base models, fine-tuning runs, loss curves."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from trainer.datasets.normalise import prompt_hash


class DatasetKind(models.TextChoices):
    EXAMPLES = "examples", "examples (imported)"
    PREFERENCES = "preferences", "preference set (built from an expert study)"


class Dataset(models.Model):
    """An imported fine-tuning dataset; its examples are stored in canonical chat form.

    A preference set built from an expert study is a dataset too (``kind`` preferences): its
    examples are chosen conversations with the rejected answer beside them, and ``provenance``
    says which study, judgments and rules made it. The trainer reads it like any other dataset.
    """

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(
        max_length=12, choices=DatasetKind.choices, default=DatasetKind.EXAMPLES
    )
    provenance = models.JSONField(
        default=dict, blank=True, help_text="Where evalhub made it from: study, rules, counts"
    )
    source_filename = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=20, help_text="Reader used: alpaca, sharegpt, messages, …")
    content_hash = models.CharField(max_length=64, help_text="sha256 over the canonical examples")
    split_ratios = models.JSONField(
        default=list,
        help_text="[train, validation, feedback, test] shares, as split (an import given three "
        "numbers has feedback 0); datasets imported before the feedback split hold three: "
        "[train, validation, test]",
    )
    seed = models.IntegerField(default=0)
    lint_report = models.JSONField(default=list, help_text="Lint issues as imported")
    lint_errors = models.PositiveIntegerField(default=0)
    lint_warnings = models.PositiveIntegerField(default=0)
    tokenizer = models.CharField(max_length=255, blank=True, help_text="Tokenizer used for lengths")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Split(models.TextChoices):
    """An example's role. train and validation feed training; feedback prompts go to studies
    whose judgments may train the next adapter; test prompts go to studies that decide, and
    never feed training, through any run."""

    TRAIN = "train", "train"
    VALIDATION = "validation", "validation"
    FEEDBACK = "feedback", "feedback"
    TEST = "test", "test"


def stored_prompt_hash(messages: list[dict]) -> str:
    """What ``prompt_hash`` holds: the prompt's hash, "" without a user turn."""
    return prompt_hash(messages) or ""


MESSAGES_UPDATE = (
    "update(messages=...) without prompt_hash would leave each row's stored hash stale; "
    "save the rows or bulk_update them"
)


class ConversationQuerySet(models.QuerySet):
    """Every way rows are written keeps ``prompt_hash`` equal to the hash of ``messages``."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.prompt_hash = stored_prompt_hash(obj.messages)
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        if "messages" in fields:
            objs = list(objs)
            for obj in objs:
                obj.prompt_hash = stored_prompt_hash(obj.messages)
            fields = [*fields, "prompt_hash"]
        return super().bulk_update(objs, fields, *args, **kwargs)

    def update(self, **kwargs):
        # bulk_update comes through here with both, one CASE per field.
        if "messages" in kwargs and "prompt_hash" not in kwargs:
            raise TypeError(MESSAGES_UPDATE)
        return super().update(**kwargs)


class Conversation(models.Model):
    """A row holding a conversation (``messages``) and the hash of its prompt, the conversation
    up to its last user turn, set on every save and bulk insert: whether a study's prompt
    reached training is then an indexed equality of stored hashes, not a pass over every
    training row."""

    prompt_hash = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="sha256 of the conversation up to its last user turn; empty without one",
    )

    objects = ConversationQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self.prompt_hash = stored_prompt_hash(self.messages)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "messages" in update_fields:
            kwargs["update_fields"] = {*update_fields, "prompt_hash"}
        super().save(*args, **kwargs)


def prompt_hashes_fill(model: type[models.Model], connection, batch_size: int = 2000) -> None:
    """Set ``prompt_hash`` on every row of ``model`` (the historical form of a Conversation in
    the migration that adds the field) from its messages, a batch of primary keys at a time.
    One parameterised UPDATE per row, sent in batches: ten times faster than bulk_update's
    CASE expressions."""
    table, pk = (
        connection.ops.quote_name(n) for n in (model._meta.db_table, model._meta.pk.column)
    )
    rows = model.objects.order_by("pk").values_list("pk", "messages")
    last = 0
    with connection.cursor() as cursor:
        while batch := list(rows.filter(pk__gt=last)[:batch_size]):
            cursor.executemany(
                f"UPDATE {table} SET prompt_hash = %s WHERE {pk} = %s",
                [(stored_prompt_hash(messages), key) for key, messages in batch],
            )
            last = batch[-1][0]


class Example(Conversation):
    """One conversation: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="examples")
    index = models.PositiveIntegerField(help_text="0-based position in the source file")
    source_line = models.PositiveIntegerField(help_text="1-based line in the source file")
    messages = models.JSONField()
    split = models.CharField(max_length=10, choices=Split.choices)
    content_hash = models.CharField(max_length=64)
    token_count = models.PositiveIntegerField(null=True, blank=True)
    # Empty when the example is no pair: an empty rejected answer is an empty-turn lint error,
    # so a stored pair always has one.
    rejected = models.TextField(
        blank=True, default="", help_text="A preference pair's rejected answer to the same prompt"
    )

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "index"], name="example_unique_index"),
            models.CheckConstraint(condition=Q(split__in=Split.values), name="example_split_valid"),
        ]
        indexes = [
            models.Index(fields=["dataset", "split"]),
            models.Index(fields=["dataset", "prompt_hash"], name="example_prompt_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name}#{self.index}"


class BaseModel(models.Model):
    """A base language model: the packaged default, a local directory or a hub id."""

    name = models.CharField(max_length=200, unique=True)
    source = models.CharField(max_length=500, help_text="smollm2-135m, a local path or a hub id")
    local_path = models.CharField(max_length=500, blank=True, help_text="Resolved weights dir")
    parameter_count = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    INTERRUPTED = "interrupted", "interrupted"


class TrainMethod(models.TextChoices):
    SFT = "sft", "supervised fine-tuning"
    DPO = "dpo", "direct preference optimisation"


class FineTuneRun(models.Model):
    """One QLoRA fine-tuning run; updated as it trains, not only at the end."""

    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="runs")
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    hyperparameters = models.JSONField(default=dict, help_text="Resolved training config")
    plan = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the engine resolved at start: steps, evaluation interval, examples kept",
    )
    method = models.CharField(max_length=3, choices=TrainMethod.choices, default=TrainMethod.SFT)
    from_run = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The run whose adapter this one starts from (and, for DPO, its reference)",
    )
    dataset_hash = models.CharField(max_length=64, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    epoch = models.FloatField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    environment = models.JSONField(default=dict, help_text="Device, library versions, host")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid running it")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    trainable_params = models.BigIntegerField(null=True, blank=True)
    total_params = models.BigIntegerField(null=True, blank=True)
    peak_memory_bytes = models.BigIntegerField(null=True, blank=True)
    wall_seconds = models.FloatField(null=True, blank=True)
    early_stopped = models.BooleanField(default=False)
    best_val_loss = models.FloatField(null=True, blank=True)
    best_step = models.PositiveIntegerField(null=True, blank=True)
    adapter_path = models.CharField(max_length=500, blank=True)
    adapter_size_bytes = models.BigIntegerField(null=True, blank=True)
    checkpoint_path = models.CharField(max_length=500, blank=True)
    resumed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resumes"
    )
    retry_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retries",
        help_text="The failed or cancelled run this one starts again with the same settings",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="run_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(method__in=TrainMethod.values), name="run_method_valid"
            ),
            # DPO improves an adapter: it has one to start from and to use as its reference.
            models.CheckConstraint(
                condition=~Q(method=TrainMethod.DPO) | Q(from_run__isnull=False),
                name="run_dpo_has_from_run",
            ),
            models.CheckConstraint(
                condition=Q(total_steps=0) | Q(step__lte=models.F("total_steps")),
                name="run_step_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def trainable_share(self) -> float | None:
        if self.trainable_params and self.total_params:
            return self.trainable_params / self.total_params
        return None

    @property
    def is_active(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)


class MetricKind(models.TextChoices):
    TRAIN = "train", "train"
    VALIDATION = "validation", "validation"


class RunMetric(models.Model):
    """A point of a loss curve: a training logging step or a validation evaluation."""

    run = models.ForeignKey(FineTuneRun, on_delete=models.CASCADE, related_name="metrics")
    kind = models.CharField(max_length=10, choices=MetricKind.choices)
    step = models.PositiveIntegerField()
    epoch = models.FloatField(default=0)
    loss = models.FloatField()
    learning_rate = models.FloatField(null=True, blank=True)
    grad_norm = models.FloatField(null=True, blank=True)
    tokens_per_s = models.FloatField(null=True, blank=True)
    # DPO validation points: the share of held-out pairs whose chosen answer the policy now
    # prefers more than the reference did, and the mean of that implicit reward margin.
    reward_accuracy = models.FloatField(null=True, blank=True)
    reward_margin = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "step", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["run", "kind", "step"], name="runmetric_unique_point"),
            models.CheckConstraint(
                condition=Q(kind__in=MetricKind.values), name="runmetric_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} loss {self.loss:.4f} at step {self.step}"
