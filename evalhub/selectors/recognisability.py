"""Whether a study's raters may tell its systems apart by form alone, and whether its gold
pairs look like its real ones: the study's texts read here, judged by
:mod:`evalhub.analysis.recognisability`. Managers only: it names the systems."""

import hashlib
import json

from django.core.cache import cache

from evalhub.analysis import recognisability
from evalhub.models import Comparison, GoldAnswer, Prompt, Study
from evalhub.selectors.studies import study_monitored_pair

# The check depends only on the texts and the seed, so its cache key is their digest: a
# regenerated output is a new key. Reading and hashing the texts costs a fraction of the check
# (benchmarks/results/recognisability.json).
CACHE_SECONDS = 24 * 60 * 60
_MISSING = object()


def recognisability_block(*, study: Study) -> dict | None:
    """What the study page and the report (``recognisability``) show for the monitored pair
    (adapter, base): the cross-validated accuracy of a surface-feature classifier picking the
    adapter's answer, the features that give it away, and the gold pairs that stand out.
    None without a pair or with too few of its comparisons to learn from."""
    pair = study_monitored_pair(study=study)
    if pair is None:
        return None
    adapter, base = pair
    rows = (
        Comparison.objects.filter(study=study)
        .order_by("id")
        .values_list(
            "is_gold",
            "gold_answer",
            "output_a__system_id",
            "output_b__system_id",
            "output_a__text",
            "output_b__text",
            "prompt_id",
        )
    )
    real, gold, gold_prompts = [], [], []
    for is_gold, answer, system_a, system_b, text_a, text_b, prompt in rows.iterator(
        chunk_size=2000
    ):
        if is_gold and answer in (GoldAnswer.A, GoldAnswer.B):
            gold.append((text_a, text_b) if answer == GoldAnswer.A else (text_b, text_a))
            gold_prompts.append(prompt)
        elif not is_gold and {system_a, system_b} == {adapter.pk, base.pk}:
            real.append((text_a, text_b) if system_a == adapter.pk else (text_b, text_a))
    check = _form_check(real, gold, study.seed)
    if check is None:
        return None
    found = check.recognisability
    return {
        "adapter": adapter.name,
        "base": base.name,
        "pairs": found.pairs,
        "folds": found.folds,
        "accuracy": found.accuracy,
        "interval": {"low": found.interval[0], "high": found.interval[1], "method": "beta"},
        "p_value": found.p_value,
        "chance": 0.5,
        "warn_above": recognisability.WARN_ABOVE,
        "warn": found.warn,
        "telltales": [
            {"feature": t.feature, "agreement": t.agreement, "adapter_higher": t.higher}
            for t in found.telltales
        ],
        "gold": _gold_block(check.gold, gold_prompts),
    }


def _gold_block(gold: recognisability.GoldLookalike | None, prompts: list[int]) -> dict | None:
    """The gold check, with the standing-out items numbered as the study stores them."""
    if gold is None:
        return None
    texts = Prompt.objects.in_bulk([prompts[i] for i in gold.standing_out])
    return {
        "items": gold.items,
        "standing_out": [
            {"number": i + 1, "prompt": texts[prompts[i]].text} for i in gold.standing_out
        ],
        "real_standing_out": gold.real_standing_out,
        "real_pairs": gold.real_pairs,
        "p_value": gold.p_value,
        "warn_standing_out": gold.warn_standing_out,
        "looking_real": gold.looking_real,
        "better_like_adapter": gold.better_like_first,
        "warn_better_form": gold.warn_better_form,
    }


def _form_check(
    real: list[tuple[str, str]], gold: list[tuple[str, str]], seed: int
) -> recognisability.FormCheck | None:
    """:func:`recognisability.form_check`, cached by the digest of what it reads."""
    digest = hashlib.sha256(json.dumps([seed, real, gold]).encode()).hexdigest()
    key = f"evalhub:form-check:{digest}"
    check = cache.get(key, _MISSING)
    if check is _MISSING:
        check = recognisability.form_check(real, gold=gold, seed=seed)
        cache.set(key, check, CACHE_SECONDS)
    return check
