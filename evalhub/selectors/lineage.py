"""Where an adapter's training came from, and whether a study's prompts reached it.

A run trains on its dataset (the train and validation examples of an imported one, every row of
a preference set) and starts from the adapter of ``from_run``, which trained on its own sets:
the sets a run learned from are those of the run and of every ancestor. A study's prompt
reached training when the hash of its conversation (everything up to the last user turn)
equals that of a row any of those sets trained on: a prompt copied from one dataset into
another is caught too. Both hashes are stored with their rows (``prompt_hash``), so the check
is an indexed query, exact whenever it runs.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q

from evalhub.models import PreferenceSet, Prompt, Study, System, SystemKind
from evalhub.selectors.outputs import run_systems
from trainer.models import Dataset, DatasetKind, FineTuneRun, Split
from trainer.selectors.runs import run_ancestors

# The splits of an imported dataset that feed training; a preference set trains on every row.
TRAINING_SPLITS = (Split.TRAIN, Split.VALIDATION)


def lineage_systems(*, run: FineTuneRun) -> list[System]:
    """What a study of ``run`` compares by default: the base model (the first run's base
    system: every run of a chain shares its base model) and the adapter of every run of the
    chain, oldest first. Systems that do not exist yet are left out."""
    chain = list(reversed(run_ancestors(run=run)))
    found = [run_systems(run=chain[0])[SystemKind.BASE]]
    found += [run_systems(run=r)[SystemKind.ADAPTER] for r in chain]
    return [s for s in found if s is not None]


@dataclass(frozen=True)
class LearnedFrom:
    """A set a run learned from: ``run`` (the run itself or an ancestor) trained on
    ``dataset`` (the preference set ``preference_set`` when it is one), ``rows`` rows of it."""

    run: FineTuneRun
    dataset: Dataset
    preference_set: str | None
    rows: int


def run_learned_from(*, run: FineTuneRun) -> list[LearnedFrom]:
    """The sets the run and each of its ancestors trained on, the first run's first."""
    names = preference_set_names()
    return [
        LearnedFrom(r, r.dataset, names.get(r.dataset_id), training_rows(r.dataset).count())
        for r in reversed(run_ancestors(run=run))
    ]


def training_rows(dataset: Dataset):
    """The examples of ``dataset`` a run on it trains on."""
    rows = dataset.examples.all()
    if dataset.kind != DatasetKind.PREFERENCES:
        rows = rows.filter(split__in=TRAINING_SPLITS)
    return rows


@dataclass(frozen=True)
class TrainedThrough:
    """Prompts of a study found among the rows ``run`` trained on (its dataset ``dataset``;
    ``preference_set`` names the set when the dataset is one)."""

    run: int
    run_name: str
    method: str
    dataset: str
    preference_set: str | None
    prompts: int


@dataclass(frozen=True)
class Leakage:
    prompts: int
    prompts_trained_on: int
    through: list[TrainedThrough]

    def as_json(self) -> dict:
        return {
            "prompts": self.prompts,
            "prompts_trained_on": self.prompts_trained_on,
            "through": [vars(t) for t in self.through],
        }


def study_runs(*, study: Study) -> list[FineTuneRun]:
    """The study's run and the runs of its systems, each with all its ancestors, once each."""
    ids = set(study.systems.filter(run__isnull=False).values_list("run_id", flat=True))
    if study.run_id:
        ids.add(study.run_id)
    runs: dict[int, FineTuneRun] = {}
    for run in FineTuneRun.objects.filter(pk__in=ids).select_related("dataset"):
        for ancestor in run_ancestors(run=run):
            runs.setdefault(ancestor.pk, ancestor)
    return sorted(runs.values(), key=lambda r: r.pk)


def study_leakage(*, study: Study) -> Leakage:
    """Which of the study's prompts (gold items aside) reached training through any run of
    its systems or any ancestor of one, and through which run and set."""
    prompts = Prompt.objects.filter(comparisons__study=study, comparisons__is_gold=False)
    by_prompt = dict(prompts.distinct().values_list("pk", "prompt_hash"))
    hashes = prompts.exclude(prompt_hash="").values("prompt_hash")
    leaked: set[str] = set()
    through = []
    set_names = preference_set_names()
    for run in study_runs(study=study):
        found = set(
            training_rows(run.dataset)
            .filter(prompt_hash__in=hashes)
            .order_by()
            .values_list("prompt_hash", flat=True)
        )
        if not found:
            continue
        leaked |= found
        through.append(
            TrainedThrough(
                run=run.pk,
                run_name=run.name,
                method=run.method,
                dataset=run.dataset.name,
                preference_set=set_names.get(run.dataset_id),
                prompts=sum(1 for h in by_prompt.values() if h in found),
            )
        )
    return Leakage(
        prompts=len(by_prompt),
        prompts_trained_on=sum(1 for h in by_prompt.values() if h in leaked),
        through=through,
    )


def preference_set_names() -> dict[int, str]:
    """{dataset id: "name vN"} of every preference set."""
    return {
        dataset_id: f"{name} v{version}"
        for dataset_id, name, version in PreferenceSet.objects.values_list(
            "dataset_id", "name", "version"
        )
    }


def studies_by_run(runs: Iterable[FineTuneRun]) -> dict[int, list[Study]]:
    """Each study that evaluates one of ``runs``, under one of them: its own run when it has
    one among them, else the newest run whose adapter it compares."""
    ids = [r.pk for r in runs]
    adapter_runs = dict(
        System.objects.filter(kind=SystemKind.ADAPTER, run__in=ids).values_list("pk", "run_id")
    )
    studies = (
        Study.objects.filter(Q(run__in=ids) | Q(systems__in=list(adapter_runs)))
        .distinct()
        .order_by("created_at", "pk")
        .prefetch_related("systems")
    )
    found: dict[int, list[Study]] = {pk: [] for pk in ids}
    for study in studies:
        owners = [adapter_runs[s.pk] for s in study.systems.all() if s.pk in adapter_runs]
        owner = study.run_id if study.run_id in found else max(owners)
        found[owner].append(study)
    return found
