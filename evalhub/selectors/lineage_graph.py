"""The lineage page's tree: a dataset, the runs that trained on it, the studies that judged
them, the preference sets built from those studies, the runs those sets trained, and so on.

Every node appears once, with its headline number; where a run is reached a second time (a DPO
run trains on a set and starts from a run), the second place is a reference to the first.
"""

from collections import deque
from dataclasses import dataclass, field

from django.db.models import Q

from evalhub.models import PreferenceSet, Study, SystemKind
from evalhub.selectors.lineage import studies_by_run
from evalhub.selectors.studies import sequential_block
from trainer.models import Dataset, FineTuneRun, MetricKind, RunMetric, TrainMethod

VERDICT_WORDS = {
    "adapter_better": "{adapter} better",
    "base_better": "{base} better",
    "equivalent": "equivalent",
    "undecided": "undecided",
}


@dataclass
class Node:
    """One box of the tree. ``kind``: dataset, run, study or set; ``edge``: how its parent
    leads to it (trains, judged in, builds, starts from); ``ref``: shown in full elsewhere."""

    kind: str
    key: str
    label: str
    edge: str = ""
    headline: str = ""
    ref: bool = False
    args: tuple = ()  # a set's page: (name, version)
    children: list["Node"] = field(default_factory=list)


def _reachable_runs(dataset: Dataset) -> list[FineTuneRun]:
    """Every run connected to ``dataset`` going forward: runs on it, runs starting from those,
    runs on preference sets built from studies of any of them."""
    runs: dict[int, FineTuneRun] = {}
    datasets, seen_datasets = deque([dataset.pk]), set()
    pending: deque[FineTuneRun] = deque()
    while datasets or pending:
        if datasets:
            dataset_id = datasets.popleft()
            if dataset_id not in seen_datasets:
                seen_datasets.add(dataset_id)
                pending.extend(FineTuneRun.objects.filter(dataset_id=dataset_id).order_by("pk"))
            continue
        run = pending.popleft()
        if run.pk in runs:
            continue
        runs[run.pk] = run
        pending.extend(run.children.order_by("pk"))
        studies = Study.objects.filter(
            Q(run=run) | Q(systems__run=run, systems__kind=SystemKind.ADAPTER)
        ).distinct()
        datasets.extend(
            PreferenceSet.objects.filter(study__in=studies).values_list("dataset_id", flat=True)
        )
    return list(runs.values())


def run_headline(run: FineTuneRun) -> str:
    """SFT: the best validation loss; DPO: the reward accuracy at the best (else last)
    validation point."""
    if run.method == TrainMethod.DPO:
        points = RunMetric.objects.filter(
            run=run, kind=MetricKind.VALIDATION, reward_accuracy__isnull=False
        ).order_by("step")
        point = points.filter(step=run.best_step).first() or points.last()
        if point is None:
            return "no reward accuracy yet"
        return f"reward accuracy {point.reward_accuracy:.3f}"
    if run.best_val_loss is None:
        return "no validation loss yet"
    return f"best validation loss {run.best_val_loss:.4f}"


def study_headline(study: Study) -> str:
    """The monitored pair's win rate with its always-valid interval and the verdict."""
    block = sequential_block(study=study)
    if block is None or block["estimate"] is None:
        return "no judgment counted yet"
    verdict = VERDICT_WORDS.get(block["verdict"], block["verdict"]).format(**block)
    low, high = block["interval"]["low"], block["interval"]["high"]
    return (
        f"{block['adapter']} vs {block['base']}: win rate {block['estimate']:.3f} "
        f"[{low:.3f}, {high:.3f}], {verdict}"
    )


def dataset_lineage(*, dataset: Dataset) -> Node:
    runs = _reachable_runs(dataset)
    by_dataset: dict[int, list[FineTuneRun]] = {}
    for run in runs:
        by_dataset.setdefault(run.dataset_id, []).append(run)
    studies = studies_by_run(runs)
    sets: dict[int, list[PreferenceSet]] = {}
    study_ids = [s.pk for found in studies.values() for s in found]
    for pset in PreferenceSet.objects.filter(study__in=study_ids).order_by("pk"):
        sets.setdefault(pset.study_id, []).append(pset)
    shown: set[int] = set()

    def run_node(run: FineTuneRun, edge: str) -> Node:
        label = f"{run.name} ({run.get_method_display()}, {run.status})"
        node = Node("run", str(run.pk), label, edge=edge, headline=run_headline(run))
        if run.pk in shown:
            node.ref = True
            return node
        shown.add(run.pk)
        for study in studies.get(run.pk, []):
            study_node = Node(
                "study", str(study.pk), study.name, "judged in", study_headline(study)
            )
            for pset in sets.get(study.pk, []):
                headline = f"{pset.pair_count} pairs, {pset.sft_count} corrections"
                set_node = Node("set", str(pset.pk), f"{pset.name} v{pset.version}", "builds")
                set_node.headline = headline
                set_node.args = (pset.name, pset.version)
                set_node.children = [
                    run_node(r, "trains") for r in by_dataset.get(pset.dataset_id, [])
                ]
                study_node.children.append(set_node)
            node.children.append(study_node)
        node.children += [
            run_node(child, "starts") for child in runs if child.from_run_id == run.pk
        ]
        return node

    examples = dataset.examples.count()
    root = Node("dataset", dataset.name, dataset.name, headline=f"{examples} examples")
    root.children = [run_node(r, "trains") for r in by_dataset.get(dataset.pk, [])]
    return root
