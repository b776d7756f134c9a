"""Evaluation data model: systems and their outputs, blinded studies, assignments, judgments."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from evalhub import blinding
from evalhub.analysis.rater_quality import DEFAULT_MIN_GOLD_ACCURACY, DEFAULT_MIN_MEDIAN_SECONDS
from trainer.models import Conversation


class SystemKind(models.TextChoices):
    BASE = "base", "base model"
    ADAPTER = "adapter", "adapter of a run"
    REFERENCE = "reference", "reference answers"
    IMPORTED = "imported", "imported outputs"
    GOLD_BETTER = "gold_better", "known better gold answers"
    GOLD_WORSE = "gold_worse", "known worse gold answers"


# A run has at most one system of each of these kinds: the pair every run study compares.
RUN_KINDS = (SystemKind.BASE, SystemKind.ADAPTER)
# Gold items need two systems (an output is unique per system and prompt); one of each kind.
GOLD_KINDS = (SystemKind.GOLD_BETTER, SystemKind.GOLD_WORSE)


class System(models.Model):
    """Something that answers prompts: a base model, a run's adapter, references, imports, or
    gold answers.

    A system is known by its fields, not by its name: run 7's base is ``run=7, kind="base"``
    (unique), the gold answers are the one system of each gold kind. The name is a label for
    people.
    """

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=SystemKind.choices)
    base_model = models.ForeignKey(
        "trainer.BaseModel", null=True, blank=True, on_delete=models.PROTECT, related_name="systems"
    )
    run = models.ForeignKey(
        "trainer.FineTuneRun",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="systems",
    )
    decoding = models.JSONField(default=dict, help_text="Generation settings used for outputs")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=SystemKind.values), name="system_kind_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind=SystemKind.ADAPTER) | Q(run__isnull=False),
                name="system_adapter_has_run",
            ),
            models.CheckConstraint(
                condition=~Q(kind=SystemKind.BASE) | Q(base_model__isnull=False),
                name="system_base_has_model",
            ),
            models.UniqueConstraint(
                fields=["run", "kind"],
                condition=Q(kind__in=RUN_KINDS),
                name="system_one_base_and_adapter_per_run",
            ),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(kind__in=GOLD_KINDS), name="system_one_per_gold_kind"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Prompt(Conversation):
    """An evaluation prompt: the conversation up to the last user turn, and its reference."""

    dataset = models.ForeignKey("trainer.Dataset", on_delete=models.CASCADE, related_name="prompts")
    example = models.ForeignKey(
        "trainer.Example", null=True, blank=True, on_delete=models.CASCADE, related_name="prompts"
    )
    messages = models.JSONField(help_text="Canonical chat messages ending with a user turn")
    reference = models.TextField(blank=True, help_text="The held-out assistant answer")

    class Meta:
        ordering = ["dataset", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "example"], name="prompt_unique_example"),
        ]

    def __str__(self) -> str:
        return f"prompt {self.pk} of {self.dataset_id}"

    @property
    def text(self) -> str:
        """The last user turn, which is what a rater reads first."""
        users = [m["content"] for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""


class Output(models.Model):
    """A system's answer to a prompt, with its automated metric values once scored."""

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="outputs")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="outputs")
    text = models.TextField()
    token_count = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(
        default=dict,
        blank=True,
        help_text="rouge1, rouge2, rougeL, bertscore_precision, bertscore_recall, bertscore_f1",
    )
    metrics_encoder = models.CharField(max_length=300, blank=True, help_text="BERTScore encoder")
    flags = models.JSONField(default=list, blank=True, help_text='e.g. ["empty"]')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prompt", "system"]
        constraints = [
            models.UniqueConstraint(fields=["system", "prompt"], name="output_unique_per_prompt"),
        ]

    def __str__(self) -> str:
        return f"output {self.pk}"


class StudyStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    OPEN = "open", "open"
    PAUSED = "paused", "paused"
    CLOSED = "closed", "closed"


class Allocation(models.TextChoices):
    """How a study's judgments are given out: every comparison to ``overlap`` raters, or drawn
    where a judgment says most (``evalhub.analysis.allocation``)."""

    UNIFORM = "uniform", "uniform: every comparison to as many raters as the overlap"
    ADAPTIVE = "adaptive", "adaptive (experimental): ask where it matters"


class Study(models.Model):
    """A blinded pairwise study of two or more systems on a set of prompts."""

    name = models.CharField(max_length=200, unique=True)
    run = models.ForeignKey(
        "trainer.FineTuneRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="studies",
    )
    systems = models.ManyToManyField(System, related_name="studies")
    raters = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="rated_studies", help_text="The panel"
    )
    status = models.CharField(max_length=8, choices=StudyStatus.choices, default=StudyStatus.DRAFT)
    criteria = models.JSONField(default=list, blank=True, help_text="Criterion names, 1–5 scores")
    guidelines = models.TextField(blank=True, help_text="Markdown shown to raters")
    show_reference = models.BooleanField(default=False)
    overlap = models.PositiveSmallIntegerField(default=2, help_text="Raters per comparison")
    seed = models.BigIntegerField(default=0)
    stop_when_decided = models.BooleanField(
        default=False, help_text="Pause the study once the sequential verdict is reached"
    )
    equivalence_margin = models.FloatField(
        default=0.05,
        help_text="Win rates within 50 % ± this count as equivalent; 0 for no equivalence verdict",
    )
    raters_at_large = models.BooleanField(
        default=False,
        help_text="Verdict about raters at large (widened for the panel's lean), not only "
        "about the study's own raters",
    )
    allocation = models.CharField(
        max_length=8, choices=Allocation.choices, default=Allocation.UNIFORM
    )
    min_gold_accuracy = models.FloatField(
        default=DEFAULT_MIN_GOLD_ACCURACY,
        help_text="A rater with a lower share of gold items right (once they have judged 3) is "
        "left out of the verdict; 0 checks nothing",
    )
    min_median_seconds = models.FloatField(
        default=DEFAULT_MIN_MEDIAN_SECONDS,
        help_text="A rater whose median time per item is shorter is left out of the verdict; "
        "0 checks nothing",
    )
    signal = models.CharField(
        max_length=90,
        default="metric",
        help_text="The cheap signal of the prediction-powered interval and adaptive allocation: "
        '"metric" or "judge:<judge name>"',
    )
    stopped_at = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Judgments when the study stopped itself, decided; empty otherwise",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=StudyStatus.values), name="study_status_valid"
            ),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="study_overlap_positive"),
            models.CheckConstraint(
                condition=Q(allocation__in=Allocation.values), name="study_allocation_valid"
            ),
            models.CheckConstraint(
                condition=Q(equivalence_margin__gte=0, equivalence_margin__lt=0.5),
                name="study_margin_in_range",
            ),
            models.CheckConstraint(
                condition=Q(min_gold_accuracy__gte=0, min_gold_accuracy__lte=1),
                name="study_min_gold_accuracy_in_range",
            ),
            models.CheckConstraint(
                condition=Q(min_median_seconds__gte=0), name="study_min_median_seconds_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def complete(self) -> bool:
        """Stopped by itself because the verdict was reached (what raters are told)."""
        return self.stopped_at is not None and self.status == StudyStatus.PAUSED


class GoldAnswer(models.TextChoices):
    A = "a", "output A is better"
    B = "b", "output B is better"
    TIE = "tie", "tie"


class Comparison(models.Model):
    """Two outputs for one prompt. ``output_a``/``output_b`` is a storage order, never a display
    order: what a rater sees on the left is decided per assignment."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="comparisons")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="comparisons")
    output_a = models.ForeignKey(Output, on_delete=models.PROTECT, related_name="+")
    output_b = models.ForeignKey(Output, on_delete=models.PROTECT, related_name="+")
    is_gold = models.BooleanField(default=False)
    gold_answer = models.CharField(max_length=3, choices=GoldAnswer.choices, blank=True)
    prediction = models.FloatField(
        null=True,
        blank=True,
        help_text="The adapter's outcome predicted by the metric, fixed at creation (adaptive)",
    )

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "output_a", "output_b"], name="comparison_unique_pair"
            ),
            models.CheckConstraint(
                condition=~Q(output_a=F("output_b")), name="comparison_distinct_outputs"
            ),
            models.CheckConstraint(
                condition=Q(is_gold=False, gold_answer="")
                | Q(is_gold=True, gold_answer__in=GoldAnswer.values),
                name="comparison_gold_has_answer",
            ),
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk} of study {self.study_id}"


class Assignment(models.Model):
    """A comparison given to one rater, with the side each output is shown on and the rater's
    order. Raters address it only through ``token``."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    left_output = models.ForeignKey(Output, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField(help_text="Order in which this rater sees it")
    token = models.CharField(max_length=43, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rater", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "rater"], name="assignment_one_per_rater"
            ),
        ]
        indexes = [models.Index(fields=["rater", "position"])]

    def __str__(self) -> str:
        return f"assignment {self.pk} for rater {self.rater_id}"

    @property
    def left_is_a(self) -> bool:
        """Whether this rater's A (the left response) is the comparison's ``output_a``."""
        return blinding.left_is_a(
            left_output=self.left_output_id, output_a=self.comparison.output_a_id
        )

    def sides(self) -> tuple[Output, Output]:
        """The comparison's two outputs as this rater sees them: (left, right)."""
        comparison = self.comparison
        return blinding.sides(comparison.output_a, comparison.output_b, left_is_a=self.left_is_a)


class Draw(models.Model):
    """One draw of an adaptive study: the comparison and rater it chose (through
    ``assignment``, which several draws share when they land on a cell already given out),
    the weight 1 / (N q), the calibrated prediction of that comparison and the mean over all
    comparisons at the time of the draw, and the bounds of its estimate
    (``evalhub.analysis.allocation``)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="draws")
    number = models.PositiveIntegerField()
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="draws")
    weight = models.FloatField()
    prediction = models.FloatField()
    centre = models.FloatField()
    low = models.FloatField()
    high = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "number"]
        constraints = [
            models.UniqueConstraint(fields=["study", "number"], name="draw_numbered_once"),
        ]

    def __str__(self) -> str:
        return f"draw {self.number} of study {self.study_id}"


class Choice(models.TextChoices):
    """What the rater chose, in the terms they saw: A is the left response, B the right.
    SKIP chooses no side: the rater flagged the item, with a reason, as one they cannot judge."""

    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "tie"
    BOTH_BAD = "both_bad", "both bad"
    SKIP = "skip", "skipped (flagged)"


class Judgment(models.Model):
    """A rater's verdict on one assignment. One per assignment, enforced by the database;
    revising updates it in place."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="judgment")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    criterion_scores = models.JSONField(
        default=dict, blank=True, help_text='{"correctness": {"a": 4, "b": 2}, ...}'
    )
    comment = models.TextField(blank=True)
    correction = models.TextField(
        blank=True,
        help_text="The rater's own better answer to the prompt, optional: SFT data for the next "
        "round",
    )
    flagged = models.BooleanField(default=False)
    flag_reason = models.CharField(max_length=200, blank=True)
    time_on_task_ms = models.PositiveIntegerField(null=True, blank=True)
    revisions = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(choice__in=Choice.values), name="judgment_choice_valid"
            ),
            # A skip is a flag: the manager must learn why the item could not be judged.
            models.CheckConstraint(
                condition=~Q(choice=Choice.SKIP) | (Q(flagged=True) & ~Q(flag_reason="")),
                name="judgment_skip_flagged_with_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"judgment {self.pk}: {self.choice}"


class Verdict(models.TextChoices):
    """A final call in storage order: which of the comparison's outputs is better."""

    A = "a", "output A is better"
    B = "b", "output B is better"
    TIE = "tie", "tie"
    BOTH_BAD = "both_bad", "both bad"


class Adjudication(models.Model):
    """A reviewer's final call on a comparison where the raters split or one flagged it: the
    label the analysis uses for that comparison, kept beside the raters' judgments, never in
    their place. ``verdict`` is in storage order (a = ``output_a`` better); ``left_output`` is
    the output the reviewer saw as A. One per comparison; revising updates it in place."""

    comparison = models.OneToOneField(
        Comparison, on_delete=models.CASCADE, related_name="adjudication"
    )
    # A final call outlives neither its comparison nor, silently, its reviewer's account.
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    left_output = models.ForeignKey(Output, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True)
    revisions = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["comparison"]
        constraints = [
            models.CheckConstraint(
                condition=Q(verdict__in=Verdict.values), name="adjudication_verdict_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"final call on comparison {self.comparison_id}: {self.verdict}"


class PreferenceSet(models.Model):
    """A versioned set of chosen/rejected pairs (and SFT rows from corrections) built from one
    study's judgments. The rows live in ``dataset`` (a trainer dataset of kind preferences, so
    the trainer reads them like any other); this record keeps where they came from."""

    name = models.SlugField(max_length=80)
    version = models.PositiveIntegerField()
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="preference_sets")
    dataset = models.OneToOneField(
        "trainer.Dataset", on_delete=models.CASCADE, related_name="preference_set"
    )
    judgments = models.ManyToManyField(Judgment, blank=True, related_name="preference_sets")
    rules = models.JSONField(default=dict, help_text="The rules applied and what each left out")
    pair_count = models.PositiveIntegerField(default=0)
    sft_count = models.PositiveIntegerField(default=0, help_text="Rows from corrections")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "version"], name="preferenceset_unique_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class JudgeBackend(models.TextChoices):
    LOCAL = "local", "local model"
    HTTP = "http", "OpenAI-compatible endpoint"


class Judge(models.Model):
    """A model judge: a model plus a pairwise prompt template, run locally through the shared
    model-loading path or against an OpenAI-compatible chat-completions endpoint. The key of an
    endpoint is never stored: ``api_key_env`` names the environment variable that holds it."""

    name = models.SlugField(max_length=80, unique=True)
    backend = models.CharField(
        max_length=5, choices=JudgeBackend.choices, default=JudgeBackend.LOCAL
    )
    model = models.CharField(
        max_length=500,
        default="smollm2-135m",
        help_text="local: smollm2-135m, a local path or a hub id; http: the served model name",
    )
    base_url = models.CharField(
        max_length=500, blank=True, help_text="http: e.g. http://127.0.0.1:8080/v1"
    )
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="Name of the environment variable with the key"
    )
    template = models.TextField(blank=True, help_text="Blank: the built-in pairwise template")
    use_reference = models.BooleanField(default=False)
    max_tokens = models.PositiveIntegerField(default=16)
    temperature = models.FloatField(default=0.0)
    timeout_s = models.FloatField(default=60.0)
    max_retries = models.PositiveSmallIntegerField(default=3)
    concurrency = models.PositiveSmallIntegerField(default=4)
    token_budget = models.PositiveIntegerField(default=0, help_text="Per study; 0 = none")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(backend__in=JudgeBackend.values), name="judge_backend_valid"
            ),
            models.CheckConstraint(
                condition=~Q(backend=JudgeBackend.HTTP) | ~Q(base_url=""),
                name="judge_http_has_url",
            ),
            models.CheckConstraint(
                condition=Q(max_tokens__gte=1) & Q(concurrency__gte=1) & Q(timeout_s__gt=0),
                name="judge_limits_positive",
            ),
            models.CheckConstraint(condition=Q(temperature__gte=0), name="judge_temperature"),
        ]

    def __str__(self) -> str:
        return self.name


class JudgeRunStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    INTERRUPTED = "interrupted", "interrupted"  # its worker died: closed by the next to start


class JudgeRun(models.Model):
    """One pass of a judge over a study. Verdicts already stored are skipped, so a run that
    stopped (budget, errors, a killed worker) is resumed by starting another."""

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="runs")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="judge_runs")
    status = models.CharField(
        max_length=11, choices=JudgeRunStatus.choices, default=JudgeRunStatus.QUEUED
    )
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid running it")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    tokens_used = models.PositiveIntegerField(default=0)
    verdicts_done = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True, help_text='[{"comparison": 12, "order": "ba", "error": "..."}]'
    )
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=JudgeRunStatus.values), name="judgerun_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.judge} on study {self.study_id} ({self.status})"


class JudgeOrder(models.TextChoices):
    """The order a judge was shown a comparison's outputs in."""

    AB = "ab", "output_a shown first"
    BA = "ba", "output_b shown first"


class JudgeVerdict(models.Model):
    """A judge's parsed answer on one comparison in one order. ``choice`` is in storage terms
    (a = ``output_a`` better), whatever order it was shown in. A row exists only for a reply
    that named a choice."""

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="verdicts")
    comparison = models.ForeignKey(
        Comparison, on_delete=models.CASCADE, related_name="judge_verdicts"
    )
    order = models.CharField(max_length=2, choices=JudgeOrder.choices)
    choice = models.CharField(max_length=3, choices=GoldAnswer.choices)
    raw = models.TextField(blank=True, help_text="The judge's reply as received")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["comparison", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["judge", "comparison", "order"], name="judgeverdict_one_per_order"
            ),
            models.CheckConstraint(
                condition=Q(order__in=JudgeOrder.values), name="judgeverdict_order_valid"
            ),
            models.CheckConstraint(
                condition=Q(choice__in=GoldAnswer.values), name="judgeverdict_choice_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.judge} on comparison {self.comparison_id} ({self.order}): {self.choice}"
