"""The report's one-line conclusion, the first thing a lead reads on the analysis page, in the
HTML and PDF report and in the JSON (``conclusion``).

Two systems: the monitored pair's always-valid verdict, with the win rate of the preferred
system, its interval and the judgments so far ("adapter-r16 is preferred to base: 72 % [56, 84],
n = 36 · decided"). More than two: the Bradley–Terry ranking, systems of one tier joined by ≈.
"""

from typing import Any

from evalhub.analysis.sequential import ADAPTER_BETTER, BASE_BETTER, EQUIVALENT

NOTHING_TO_COMPARE = "Nothing to compare: the study has fewer than two systems"
NO_JUDGMENTS = "No verdict yet: no judgments"


def _pct(value: float) -> str:
    return f"{value * 100:.0f} %"


def _interval(low: float, high: float) -> str:
    return f"[{low * 100:.0f}, {high * 100:.0f}]"


def conclusion(
    *, sequential: dict[str, Any] | None, analysis: dict[str, Any], systems: list[str]
) -> str:
    if len(systems) > 2:
        return _ranking_line(analysis)
    if sequential is None:
        return NOTHING_TO_COMPARE
    return _verdict_line(sequential)


def _verdict_line(q: dict[str, Any]) -> str:
    adapter, base, n = q["adapter"], q["base"], q["judgments"]
    if not n:
        return NO_JUDGMENTS
    if q["estimate"] is None:
        return f"No verdict yet: no comparison has all its judgments, n = {n}"
    estimate, low, high = q["estimate"], q["interval"]["low"], q["interval"]["high"]
    decided = "decided" + (", the study stopped itself" if q["stopped_at"] else "")
    if q["verdict"] == ADAPTER_BETTER:
        rate = f"{_pct(estimate)} {_interval(low, high)}"
        return f"{adapter} is preferred to {base}: {rate}, n = {n} · {decided}"
    if q["verdict"] == BASE_BETTER:
        rate = f"{_pct(1 - estimate)} {_interval(1 - high, 1 - low)}"
        return f"{base} is preferred to {adapter}: {rate}, n = {n} · {decided}"
    rate = f"{adapter} wins {_pct(estimate)} {_interval(low, high)} against {base}, n = {n}"
    if q["verdict"] == EQUIVALENT:
        return f"Equivalent within ±{q['margin'] * 100:.0f} points: {rate} · {decided}"
    if q["judgments_needed"] is None:
        return f"No verdict yet: {rate} · no verdict in sight at the current win rate"
    needed, left = q["judgments_needed"], q.get("judgments_left")
    if left == 0:
        return f"No verdict yet: {rate} · about {needed:,} more judgments needed, none left"
    if left is not None and needed > left:
        return (
            f"No verdict yet: {rate} · about {needed:,} more judgments needed, "
            f"more than the {left:,} this study has left"
        )
    return f"No verdict yet: {rate} · about {needed:,} more judgments needed"


def _ranking_line(analysis: dict[str, Any]) -> str:
    ranking, n = analysis["ranking"], analysis["judgments"]
    if ranking.get("insufficient"):
        return (
            f"No ranking yet: {ranking['reason']} ({ranking['n']} of {ranking['needed']}), n = {n}"
        )
    tiers: dict[int, list[str]] = {}
    for s in ranking["systems"]:
        tiers.setdefault(s["tier"], []).append(s["system"])
    order = " > ".join(" ≈ ".join(names) for _, names in sorted(tiers.items()))
    return f"Ranking: {order} (Bradley–Terry), n = {n}"
