"""Simulated studies: a fixed size from the plan against the always-valid sequential verdict.

Per true win rate (45 … 70 % of decisive judgments), with 20 % ties, prompt and rater effects
(logit-normal: a prompt or a rater leans one way), overlap 2 and 6 raters, for both verdicts a
study can ask for (``evalhub.analysis.sequential``):

- *about the study's own raters* (the default, ``panel``): the truth is that panel's win rate
  over all prompts, μ_panel; ``fixed`` is one two-sided t-test on the comparisons' mean
  outcomes (variance s²/P) at the plan's size; ``sequential`` is the betting confidence
  sequence over completed comparisons;
- *about raters at large* (``at_large``): the truth is the population win rate μ over prompts
  and raters; ``fixed`` adds the raters' term τ̂² Σ w_r² to the variance (Satterthwaite's
  degrees of freedom), ``sequential`` is the sequence widened by the rater design effect.

Both use the size the default plan gives for 60 % (``evalhub.analysis.planning``, a verdict about
the panel); a plan for raters at large asks far more (its power is measured in ppi_sim.md).
Sequential studies are read after every judgment and stop at the first verdict; those still
undecided at 3 × the fixed size stop there without a verdict.

A verdict is false when the truth contradicts it: ``adapter_better`` when the true win rate is
at most 50 %, ``base_better`` when at least 50 %, ``equivalent`` when the true rate is not
within the margin. As a contrast, the naive peeker: a z-test after every judgment from the 10th
up to 500 on 20,000 fair coins, stopping at the first p < 0.05.

A third design, *sequential + adaptive* (``evalhub.analysis.allocation``): a pool of as many
prompts as the uniform sequential design can reach at its cap (cap / overlap), each with a
metric prediction, and the same six raters. The full prompt × rater table of outcomes is drawn
first (same effects and ties); the study draws comparisons by ``allocation.design`` on the
judgments before each draw and a rater uniformly, pays only for cells not yet judged, reads the
betting sequence over the weighted estimates, and stops at its first verdict or at the uniform
design's cap of distinct judgments. Its truth is that table's mean (what its verdict is
about); against the population rate too, for transparency. The metric difference of a prompt
is its logit (centre + prompt effect) plus noise, negated on a random fifth of the prompts
(metric and experts disagree there); predictions by ``evalhub.analysis.ppi.metric_predictions``.
Two scenarios (``SCENARIOS``): *disagreement*, clear prompts (prompt SD 2.0: on the four
fifths where the metric agrees, the experts' outcome is nearly settled and predicted), and
*mild*, the effects of the designs above (prompt SD 0.5: every prompt close to a coin flip).
Each is compared with the uniform sequential design (about the panel) at its own prompt SD.
Ablation: ``EXPLORATION`` monkeypatched to 1 (uniform draws, the same calibrated estimator:
what the metric gives without the targeting).

Writes benchmarks/results/sequential_sim.json. Run: python benchmarks/sequential_sim.py;
``--adaptive`` reruns only the adaptive designs (and the uniform sequential rows they are
compared with) and replaces that section of the JSON, keeping the rest.
"""

import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats
from scipy.special import expit

from evalhub.analysis import allocation
from evalhub.analysis.planning import plan_study
from evalhub.analysis.ppi import metric_predictions
from evalhub.analysis.sequential import (
    ADAPTER_BETTER,
    BASE_BETTER,
    DEFAULT_MARGIN,
    EQUIVALENT,
    RATER_CONFIDENCE,
    UNDECIDED,
    Outcome,
    Units,
    clustered_sequence,
    comparison_units,
    confidence_sequence,
    verdict_of,
)

TRUE_RATES = (0.45, 0.50, 0.55, 0.60, 0.65, 0.70)
TIE_RATE = 0.2
OVERLAP = 2
RATERS = 6
PROMPT_SD = 0.5  # logit scale
RATER_SD = 0.2
ALPHA = 0.05
STUDIES = 400
CAP_FACTOR = 3
SEED = 16
# At a true 50 %: (prompt SD, rater SD) with neither effect, one, or the other.
ABLATION = ((0.0, 0.0), (PROMPT_SD, 0.0), (0.0, RATER_SD))
SCOPES = ("panel", "at_large")
# Standard normal prompt draws for a panel's true win rate over all prompts; a fixed set, so the
# studies' own random stream (and so every other figure) is the same as without it.
PANEL_PROMPTS = np.random.default_rng(0).standard_normal(20_000)
ADAPTIVE_STUDIES = 200
DISAGREE_SHARE = 0.2
METRIC_NOISE_SD = 0.25  # logit scale, added to a prompt's logit before the fifth is negated
# (name, prompt SD on the logit scale, true rates): the scenario and the mild one.
SCENARIOS = (
    ("disagreement", 2.0, (0.50, 0.55, 0.60, 0.65, 0.70)),
    ("mild", PROMPT_SD, (0.50, 0.60, 0.65, 0.70)),
)
# The ablation (uniform draws, ε = 1) at the rates where most studies decide.
ABLATION_RATES = (0.60, 0.65, 0.70)
CHUNK = 50
OUT = Path(__file__).parent / "results" / "sequential_sim.json"


def shift_for(rate: float, effects_sd: tuple[float, float], rng: np.random.Generator) -> float:
    """The logit centre whose average over prompt and rater effects is ``rate``."""
    prompt_sd, rater_sd = effects_sd
    effects = rng.normal(0, prompt_sd, 200_000) + rng.normal(0, rater_sd, 200_000)
    low, high = -5.0, 5.0
    for _ in range(60):
        mid = (low + high) / 2
        if expit(mid + effects).mean() < rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def simulate_study(
    rate_shift: float, effects_sd: tuple[float, float], prompts: int, rng: np.random.Generator
) -> tuple[list[Outcome], float]:
    """The adapter's outcomes (1, ½, 0) in judgment order, with each judgment's prompt and
    rater (a prompt's two judgments come one after the other), and the panel's true win rate
    with ties as half: its raters, each equally likely on a comparison, over all prompts."""
    prompt_sd, rater_sd = effects_sd
    prompt_effect = rng.normal(0, prompt_sd, prompts)
    rater_effect = rng.normal(0, rater_sd, RATERS)
    all_prompts = prompt_sd * PANEL_PROMPTS
    p_panel = expit(rate_shift + all_prompts[:, None] + rater_effect[None, :]).mean()
    mu_panel = 0.5 + (1 - TIE_RATE) * (p_panel - 0.5)
    order = np.repeat(rng.permutation(prompts), OVERLAP)
    raters = np.concatenate([rng.choice(RATERS, OVERLAP, replace=False) for _ in range(prompts)])
    p_win = expit(rate_shift + prompt_effect[order] + rater_effect[raters])
    tie = rng.random(len(order)) < TIE_RATE
    win = rng.random(len(order)) < p_win
    x = np.where(tie, 0.5, win.astype(float))
    outcomes = [Outcome(int(p), str(r), float(v)) for p, r, v in zip(order, raters, x, strict=True)]
    return outcomes, float(mu_panel)


def fixed_verdict(units: Units) -> str:
    """Two-sided test of ½ on the comparisons' mean outcomes, with the raters' term (zero for
    a verdict about the panel) added to the variance of their mean (Satterthwaite's degrees of
    freedom for the sum)."""
    y = units.means
    prompts_term = y.var(ddof=1) / len(y)
    raters_term = float(units.rater_term[-1])
    if raters_term == 0:
        t = (y.mean() - 0.5) / np.sqrt(prompts_term)
        if 2 * stats.t.sf(abs(t), len(y) - 1) >= ALPHA:
            return UNDECIDED
        return ADAPTER_BETTER if t > 0 else BASE_BETTER
    df = (prompts_term + raters_term) ** 2 / (
        prompts_term**2 / (len(y) - 1) + raters_term**2 / (RATERS - 1)
    )
    t = (y.mean() - 0.5) / np.sqrt(prompts_term + raters_term)
    if 2 * stats.t.sf(abs(t), df) >= ALPHA:
        return UNDECIDED
    return ADAPTER_BETTER if t > 0 else BASE_BETTER


def is_false(verdict: str, mu: float) -> bool:
    return (
        (verdict == ADAPTER_BETTER and mu <= 0.5)
        or (verdict == BASE_BETTER and mu >= 0.5)
        or (verdict == EQUIVALENT and abs(mu - 0.5) >= DEFAULT_MARGIN)
    )


def for_scope(units: Units, scope: str) -> Units:
    """A verdict about the panel has no rater term."""
    if scope == "at_large":
        return units
    return Units(units.means, units.completed_at, np.zeros_like(units.rater_term))


def run_rate(args) -> dict:
    rate, fixed_n, effects_sd, scope = args
    rng = np.random.default_rng([SEED, int(rate * 1000)])
    shift = shift_for(rate, effects_sd, rng)
    mu = 0.5 + (1 - TIE_RATE) * (rate - 0.5)  # the win rate with ties as half
    cap = CAP_FACTOR * fixed_n
    fixed, sequential, truths = [], [], []
    for _ in range(STUDIES):
        outcomes, mu_panel = simulate_study(shift, effects_sd, cap // OVERLAP, rng)
        truth = mu_panel if scope == "panel" else mu
        truths.append(truth)
        required = dict.fromkeys({o.item for o in outcomes}, OVERLAP)
        first = comparison_units(outcomes[:fixed_n], required)
        fixed.append((fixed_verdict(for_scope(first, scope)), truth))
        units = for_scope(comparison_units(outcomes, required), scope)
        low, high = clustered_sequence(units, alpha=ALPHA)
        decided = (
            (low > 0.5)
            | (high < 0.5)
            | ((low > 0.5 - DEFAULT_MARGIN) & (high < 0.5 + DEFAULT_MARGIN))
        )
        at = int(decided.argmax()) if decided.any() else len(low) - 1
        verdict = verdict_of(low[at], high[at], margin=DEFAULT_MARGIN)
        sequential.append((verdict, int(units.completed_at[at]), truth))
    seq_n = np.array([n for _, n, _ in sequential])
    fixed_verdicts = [v for v, _ in fixed]
    return {
        "scope": scope,
        "true_win_rate": rate,
        "prompt_effect_sd_logit": effects_sd[0],
        "rater_effect_sd_logit": effects_sd[1],
        "true_win_rate_ties_as_half": mu,
        "panel_truth_spread": [float(min(truths)), float(max(truths))],
        "fixed": {
            "judgments": fixed_n,
            "false_verdict_rate": sum(is_false(v, t) for v, t in fixed) / STUDIES,
            "verdicts": {v: fixed_verdicts.count(v) / STUDIES for v in sorted(set(fixed_verdicts))},
            "median_judgments": fixed_n,
            "p90_judgments": fixed_n,
        },
        "sequential": {
            "false_verdict_rate": sum(is_false(v, t) for v, _, t in sequential) / STUDIES,
            "verdicts": {
                v: sum(1 for w, _, _ in sequential if w == v) / STUDIES
                for v in sorted({w for w, _, _ in sequential})
            },
            "median_judgments": float(np.median(seq_n)),
            "p90_judgments": float(np.percentile(seq_n, 90)),
            "median_vs_fixed": float(np.median(seq_n)) / fixed_n,
            "undecided_at_cap": sum(1 for w, _, _ in sequential if w == UNDECIDED) / STUDIES,
        },
    }


def adaptive_study(
    table: np.ndarray, predictions: dict[int, float], cap: int, rng: np.random.Generator
) -> tuple[str, int, int]:
    """One adaptive study on a prompt × rater table of outcomes: its verdict, the distinct
    judgments it had paid for when it stopped (its first verdict, or ``cap`` judgments) and
    the draws it had made by then (a draw of a cell judged before reuses it). Each draw comes
    from ``allocation.design`` on the judgments before it, as the service makes it; the
    sequence is read every ``CHUNK`` draws and the first deciding draw found in the chunk."""
    n, raters = table.shape
    f = np.array([predictions[i] for i in range(n)])
    centre = allocation.prediction_mean(predictions)
    seen = np.zeros(table.shape, dtype=bool)
    items: list[int] = []
    values: list[float] = []
    draws, outcomes, paid = [], [], []
    while True:
        plan = allocation.design(f, np.array(items, dtype=int), np.array(values))
        q = plan.probabilities
        item = min(int(np.searchsorted(np.cumsum(q), rng.random() * q.sum())), n - 1)
        rater = int(rng.integers(raters))
        y = float(table[item, rater])
        if not seen[item, rater]:
            seen[item, rater] = True
            items.append(item)
            values.append(y)
        draws.append(plan.draw(item, item, rater))
        outcomes.append(y)
        paid.append(len(items))
        if len(draws) % CHUNK and len(items) < cap:
            continue
        low, high = confidence_sequence(
            allocation.estimates(draws, outcomes),
            alpha=ALPHA,
            lower=[d.low for d in draws],
            upper=[d.high for d in draws],
            centre=centre,
        )
        decided = (
            (low > 0.5)
            | (high < 0.5)
            | ((low > 0.5 - DEFAULT_MARGIN) & (high < 0.5 + DEFAULT_MARGIN))
        )
        if decided.any() or len(items) >= cap:
            at = int(decided.argmax()) if decided.any() else len(low) - 1
            return verdict_of(low[at], high[at], margin=DEFAULT_MARGIN), paid[at], at + 1


def metric_differences(logits: np.ndarray, rng: np.random.Generator) -> dict[int, float]:
    """A metric that follows the experts' preference on four prompts in five (the prompt's
    logit plus noise) and points the other way on the rest."""
    noisy = logits + rng.normal(0, METRIC_NOISE_SD, len(logits))
    disagree = rng.permutation(len(logits)) < round(DISAGREE_SHARE * len(logits))
    return {i: float(d) for i, d in enumerate(np.where(disagree, -noisy, noisy))}


def run_adaptive(args) -> dict:
    scenario, rate, cap, variant, exploration, prompt_sd = args
    allocation.EXPLORATION = exploration  # the ablation's switch: the module reads it per draw
    rng = np.random.default_rng([SEED, int(rate * 1000), int(prompt_sd * 10), 7])
    effects_sd = (prompt_sd, RATER_SD)
    shift = shift_for(rate, effects_sd, rng)
    mu = 0.5 + (1 - TIE_RATE) * (rate - 0.5)
    prompts = cap // OVERLAP
    studies, truths, drawn = [], [], []
    for _ in range(ADAPTIVE_STUDIES):
        logits = shift + rng.normal(0, prompt_sd, prompts)
        rater_effect = rng.normal(0, RATER_SD, RATERS)
        p_win = expit(logits[:, None] + rater_effect[None, :])
        tie = rng.random(p_win.shape) < TIE_RATE
        table = np.where(tie, 0.5, (rng.random(p_win.shape) < p_win).astype(float))
        predictions = metric_predictions(metric_differences(logits, rng))
        verdict, judgments, draws = adaptive_study(table, predictions, cap, rng)
        truths.append(float(table.mean()))
        studies.append((verdict, judgments, float(table.mean())))
        drawn.append(draws)
    n = np.array([j for _, j, _ in studies])
    verdicts = [v for v, _, _ in studies]
    return {
        "scenario": scenario,
        "design": variant,
        "exploration": exploration,
        "true_win_rate": rate,
        "prompt_effect_sd_logit": prompt_sd,
        "rater_effect_sd_logit": RATER_SD,
        "true_win_rate_ties_as_half": mu,
        "prompts": prompts,
        "table_truth_spread": [float(min(truths)), float(max(truths))],
        "false_verdict_rate": sum(is_false(v, t) for v, _, t in studies) / ADAPTIVE_STUDIES,
        "false_verdict_rate_vs_population": sum(is_false(v, mu) for v in verdicts)
        / ADAPTIVE_STUDIES,
        "verdicts": {v: verdicts.count(v) / ADAPTIVE_STUDIES for v in sorted(set(verdicts))},
        "median_judgments": float(np.median(n)),
        "p90_judgments": float(np.percentile(n, 90)),
        "median_draws": float(np.median(drawn)),
        "undecided_at_cap": verdicts.count(UNDECIDED) / ADAPTIVE_STUDIES,
    }


def naive_peeking(coins: int = 20_000, horizon: int = 500, start: int = 10) -> float:
    """Share of fair-coin studies a z-test after every judgment declares different."""
    rng = np.random.default_rng(SEED)
    flips = rng.integers(0, 2, size=(coins, horizon), dtype=np.int8)
    n = np.arange(1, horizon + 1)
    z = (np.cumsum(flips, axis=1) - n / 2) / np.sqrt(n / 4)
    z_crit = stats.norm.ppf(1 - ALPHA / 2)
    return float((np.abs(z[:, start - 1 :]) > z_crit).any(axis=1).mean())


def adaptive_jobs(fixed_n: int) -> tuple[list[tuple], list[tuple]]:
    """The uniform sequential rows (about the panel) and the adaptive runs of every scenario;
    the adaptive runs that reach the cap most often first, so the two processes end together."""
    cap = CAP_FACTOR * fixed_n
    uniform = [
        (rate, fixed_n, (prompt_sd, RATER_SD), "panel")
        for _, prompt_sd, rates in SCENARIOS
        for rate in rates
    ]
    adaptive = [
        (name, rate, cap, variant, exploration, prompt_sd)
        for name, prompt_sd, rates in SCENARIOS
        for variant, exploration in (
            ("adaptive", allocation.EXPLORATION),
            ("uniform_draws", 1.0),
        )
        for rate in rates
        if variant == "adaptive" or rate in ABLATION_RATES
    ]
    return uniform, sorted(adaptive, key=lambda job: job[1])


def adaptive_result(uniform: list[dict], adaptive: list[dict], fixed_n: int) -> dict:
    """Per scenario: the uniform sequential rows, and the adaptive rows by design, each with
    its median against the uniform design's at the same rate and prompt effect."""
    result: dict = {
        "settings": {
            "studies_per_rate": ADAPTIVE_STUDIES,
            "uniform_studies_per_rate": STUDIES,
            "prompts": CAP_FACTOR * fixed_n // OVERLAP,
            "judgment_cap": CAP_FACTOR * fixed_n,
            "disagree_share": DISAGREE_SHARE,
            "metric_noise_sd_logit": METRIC_NOISE_SD,
            "exploration": allocation.EXPLORATION,
            "bands": allocation.BANDS,
            "band_prior_judgments": allocation.BAND_PRIOR_JUDGMENTS,
            "prior_judgments": allocation.PRIOR_JUDGMENTS,
            "slope_prior": allocation.SLOPE_PRIOR,
        },
    }
    for name, prompt_sd, _ in SCENARIOS:
        baseline = [u for u in uniform if u["prompt_effect_sd_logit"] == prompt_sd]
        scenario: dict = {"prompt_effect_sd_logit": prompt_sd, "uniform_sequential": baseline}
        for row in (r for r in adaptive if r["scenario"] == name):
            match = next(b for b in baseline if b["true_win_rate"] == row["true_win_rate"])
            uniform_median = match["sequential"]["median_judgments"]
            row["uniform_sequential_median_judgments"] = uniform_median
            row["median_vs_uniform"] = row["median_judgments"] / uniform_median
            scenario.setdefault(row["design"], []).append(row)
        result[name] = scenario
    return result


def machine() -> dict:
    """What the simulations ran on, for the results file."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": multiprocessing.cpu_count(),
    }


def main() -> None:
    started = time.time()
    only_adaptive = "--adaptive" in sys.argv[1:]
    plan = plan_study(win_rate=0.6, tie_rate=TIE_RATE, overlap=OVERLAP, raters=RATERS)
    jobs = [
        (rate, plan.judgments, effects, scope)
        for scope in SCOPES
        for rate, effects in [(r, (PROMPT_SD, RATER_SD)) for r in TRUE_RATES]
        + [(0.5, e) for e in ABLATION]
    ]
    uniform_jobs, adaptive_runs = adaptive_jobs(plan.judgments)
    with multiprocessing.Pool(2) as pool:
        rows = pool.map(run_rate, ([] if only_adaptive else jobs) + uniform_jobs)
        adaptive_rows = pool.map(run_adaptive, adaptive_runs, chunksize=1)
    adaptive = adaptive_result(rows[len(rows) - len(uniform_jobs) :], adaptive_rows, plan.judgments)
    run = {
        "machine": machine(),
        "wall_seconds": round(time.time() - started, 1),
        "cpu_seconds": round(sum(os.times()[:4]), 1),
    }
    if only_adaptive:
        result = json.loads(OUT.read_text())
        result["adaptive"] = {**adaptive, "run": {"command": " ".join(sys.argv), **run}}
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["adaptive"], indent=2))
        return
    per_scope = len(TRUE_RATES) + len(ABLATION)
    result = {
        "benchmark": "sequential_sim",
        "settings": {
            "tie_rate": TIE_RATE,
            "overlap": OVERLAP,
            "raters": RATERS,
            "prompt_effect_sd_logit": PROMPT_SD,
            "rater_effect_sd_logit": RATER_SD,
            "alpha": ALPHA,
            "equivalence_margin": DEFAULT_MARGIN,
            "studies_per_rate": STUDIES,
            "sequential_cap": CAP_FACTOR * plan.judgments,
            "rater_variance_upper_confidence": RATER_CONFIDENCE,
            "seed": SEED,
        },
        "fixed_plan_for_60": {
            "judgments": plan.judgments,
            "prompts": plan.prompts,
            "design_effect": plan.design_effect,
        },
        **{
            scope: {
                "rates": rows[i * per_scope : i * per_scope + len(TRUE_RATES)],
                "ablation_at_50": rows[i * per_scope + len(TRUE_RATES) : (i + 1) * per_scope],
            }
            for i, scope in enumerate(SCOPES)
        },
        "adaptive": adaptive,
        "naive_peeking_false_positive_rate": naive_peeking(),
        **run,
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
