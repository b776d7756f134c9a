"""The report's charts, drawn from the report dict alone so the page, the HTML export and the PDF
show the same pictures of the same numbers."""

from typing import Any

from evalhub.charts import Bar, heatmap, interval_bars, loss_curve_svg, scatter


def _interval(result: dict | None) -> tuple[float | None, float | None]:
    if not result or result.get("insufficient"):
        return None, None
    return result["low"], result["high"]


def _symmetric_domain(values: list[float], floor: float = 1.0) -> tuple[float, float]:
    span = max([abs(v) for v in values if v is not None] + [floor])
    return -span, span


def _metric_scatters(analysis: dict[str, Any]) -> dict[str, Any]:
    """One scatter per metric, each item oriented system − opponent (the report orients every
    comparison so), named by the systems when the study compares one pair."""
    pairs = analysis["pairs"]
    system, opponent = (
        (pairs[0]["system"], pairs[0]["opponent"]) if len(pairs) == 1 else ("system", "opponent")
    )
    return {
        m["metric"]: scatter(
            # The experts' preference for the system, from −½…½ to the share 0…1.
            [(x, y + 0.5) for x, y, _ in m["points"]],
            title=f"{m['label']} difference against the experts' preference",
            x_label=f"{m['label']}: {system} − {opponent}",
            y_label=f"experts prefer {system}",
        )
        for m in analysis["metrics"]
    }


def report_figures(report: dict[str, Any]) -> dict[str, Any]:
    analysis = report["analysis"]
    figures: dict[str, Any] = {}
    if analysis["pairs"]:
        figures["win_rates"] = interval_bars(
            [
                Bar(
                    f"{p['system']} vs {p['opponent']}",
                    p["win_rate"],
                    *_interval(p["bootstrap"]),
                    note=f"n = {p['n']}",
                )
                for p in analysis["pairs"]
            ],
            title="Win rate with 95% item-clustered bootstrap interval",
        )
    if analysis["criteria"]:
        bars = [
            Bar(
                f"{c['criterion']}: {c['system']} − {c['opponent']}",
                c["mean_difference"],
                *_interval(c["interval"]),
                note=f"n = {c['n']}",
            )
            for c in analysis["criteria"]
        ]
        figures["criteria"] = interval_bars(
            bars,
            title="Mean score difference with 95% bootstrap interval",
            domain=_symmetric_domain([v for b in bars for v in (b.value, b.low, b.high)]),
            reference=0.0,
            percent=False,
        )
    ranking = analysis["ranking"]
    if not ranking.get("insufficient"):
        bars = [
            Bar(s["system"], s["strength"], *_interval(s["interval"]), note=f"tier {s['tier']}")
            for s in ranking["systems"]
        ]
        figures["ranking"] = interval_bars(
            bars,
            title="Bradley–Terry strength (log scale) with 95% bootstrap interval",
            domain=_symmetric_domain([v for b in bars for v in (b.low, b.high)], floor=0.5),
            reference=0.0,
            percent=False,
        )
    agreement = analysis["agreement"]
    if len(agreement["raters"]) >= 2:
        index = {r: i for i, r in enumerate(agreement["raters"])}
        cells = {
            (index[p["rater_1"]], index[p["rater_2"]]): (
                None if p["kappa"].get("insufficient") else p["kappa"]["value"]
            )
            for p in agreement["pairs"]
        }
        figures["agreement"] = heatmap(
            agreement["raters"], cells, title="Cohen's kappa for each pair of raters"
        )
    if analysis["raters"]:
        figures["raters"] = interval_bars(
            [
                Bar(
                    r["rater"],
                    None
                    if r["majority_agreement"].get("insufficient")
                    else r["majority_agreement"]["value"],
                    note=f"n = {r['majority_agreement']['n']}",
                )
                for r in analysis["raters"]
            ],
            title="Agreement of each rater with the other raters' majority",
            reference=None,
        )
    figures["bias"] = interval_bars(
        [
            Bar("left side won", analysis["position_bias"]["share"]),
            Bar("longer output won", analysis["length_bias"]["share"]),
        ],
        title="Share of decisive judgments won by the left side / by the longer output",
    )
    figures["metrics"] = _metric_scatters(analysis)
    run = report.get("run")
    curves = {kind: points for kind, points in (run or {}).get("loss_curves", {}).items() if points}
    if curves:
        series = {f"{kind} loss": [(p[0], p[1]) for p in pts] for kind, pts in curves.items()}
        figures["loss_curves"] = loss_curve_svg(series)
    return figures
