"""Per-system metric means and the paired difference between two systems, with intervals.

Plain data in, plain data out (no ORM): the outputs service feeds it stored metric values.
"""

from collections.abc import Hashable, Mapping, Sequence

from evalhub.metrics import METRICS
from evalhub.metrics.bootstrap import bootstrap_mean, bootstrap_paired_difference

MetricRow = Mapping[str, float]


def metric_intervals(
    rows: Sequence[MetricRow], *, n_resamples: int = 2000, seed: int = 0
) -> dict[str, dict]:
    """For each metric present in the rows: mean, 95% bootstrap interval and n."""
    summary = {}
    for metric in METRICS:
        values = [row[metric] for row in rows if metric in row]
        interval = bootstrap_mean(values, n_resamples=n_resamples, seed=seed)
        if interval is not None:
            summary[metric] = interval.as_dict()
    return summary


def paired_difference(
    treatment: Mapping[Hashable, MetricRow],
    control: Mapping[Hashable, MetricRow],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, dict]:
    """Mean of treatment − control over the items both scored, per metric, with its interval.

    Items are matched by key (the prompt), so an item one system skipped drops out of the pair.
    """
    summary = {}
    shared = [key for key in treatment if key in control]
    for metric in METRICS:
        keys = [k for k in shared if metric in treatment[k] and metric in control[k]]
        interval = bootstrap_paired_difference(
            [treatment[k][metric] for k in keys],
            [control[k][metric] for k in keys],
            n_resamples=n_resamples,
            seed=seed,
        )
        if interval is not None:
            summary[metric] = interval.as_dict()
    return summary
