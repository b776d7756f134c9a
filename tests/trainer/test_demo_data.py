"""The bundled demo dataset (kitchen conversion desk) and its gold pairs.

Every answer is re-checked from the question's own words with this module's parser and unit table
(NIST definitions of the US customary and avoirdupois units), not with the generator's code.
"""

import json
import re
import subprocess
import sys
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

DEMO_DIR = Path(__file__).resolve().parents[2] / "trainer" / "demo_data"
DEMO = DEMO_DIR / "demo.jsonl"
GOLD = DEMO_DIR / "gold.jsonl"
GENERATOR = DEMO_DIR / "make_demo.py"

ML_PER = {
    "tsp": 4.92892159375,
    "tbsp": 14.78676478125,
    "fl oz": 29.5735295625,
    "cup": 236.5882365,
    "pint": 473.176473,
    "quart": 946.352946,
    "ml": 1.0,
    "l": 1000.0,
}
G_PER = {"g": 1.0, "kg": 1000.0, "oz": 28.349523125, "lb": 453.59237}

QUESTION_UNITS = {
    **dict.fromkeys(("fluid ounces", "fluid ounce", "fl oz"), "fl oz"),
    **dict.fromkeys(("teaspoons", "teaspoon", "tsp"), "tsp"),
    **dict.fromkeys(("tablespoons", "tablespoon", "tbsp"), "tbsp"),
    **dict.fromkeys(("cups", "cup"), "cup"),
    **dict.fromkeys(("pints", "pint"), "pint"),
    **dict.fromkeys(("quarts", "quart"), "quart"),
    **dict.fromkeys(("millilitres", "milliliters", "ml"), "ml"),
    **dict.fromkeys(("litres", "liters", "litre", "liter"), "l"),
    **dict.fromkeys(("grams", "gram", "g"), "g"),
    **dict.fromkeys(("kilograms", "kilogram", "kilos", "kilo", "kg"), "kg"),
    **dict.fromkeys(("ounces", "ounce", "oz"), "oz"),
    **dict.fromkeys(("pounds", "pound", "lbs", "lb"), "lb"),
}
ANSWER_UNITS = {
    **{name: name for name in ("ml", "l", "g", "kg", "oz", "lb")},
    **{f"US {name}": name for name in ("fl oz", "tsp", "tbsp", "cup", "pint", "quart")},
    **{f"US {name}s": name for name in ("cup", "pint", "quart")},
    "°C": "C",
    "°F": "F",
}
WORD_AMOUNTS = {"a": 1, "an": 1, "one": 1, "half a": 0.5, "a quarter": 0.25, "one and a half": 1.5}
WORD_AMOUNTS |= {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8, "ten": 10}
ROUNDING_PLACES = {
    "rounded to the nearest ml": 0,
    "rounded to the nearest gram": 0,
    "rounded to the nearest degree": 0,
    "rounded to one decimal": 1,
    "rounded to two decimals": 2,
}
NEAREST = {"ml": "ml", "g": "gram", "C": "degree", "F": "degree"}

_units = "|".join(sorted(map(re.escape, QUESTION_UNITS), key=len, reverse=True))
_amount = r"\d+ \d/\d|\d/\d|\d+(?:\.\d+)?|" + "|".join(sorted(WORD_AMOUNTS, key=len, reverse=True))
UNIT_MENTION = re.compile(rf"\b(?:US )?({_units})\b", re.IGNORECASE)
AMOUNT_MENTION = re.compile(rf"\b({_amount}) (?:US )?({_units})\b", re.IGNORECASE)
TEMPERATURE = re.compile(r"\b(\d+) ?(?:°|degrees )?(F|C|Fahrenheit|Celsius)\b")
SCALE = re.compile(r"\b(Fahrenheit|Celsius)\b|°([CF])\b")

HOUSE = re.compile(
    r"\AAnswer: (?P<value>\d+(?:\.\d+)?) (?P<unit>[^\n]+)\n"
    r"Working: (?P<working>[^\n]+)\nTip: [A-Z1-9][^\n]+[.]\Z"
)
NUM = r"(\d+(?:\.\d+)?)"
MULTIPLY = re.compile(rf"\A{NUM} (.+?) × {NUM} (.+?) = {NUM} (.+?), (.+)\.\Z")
DIVIDE = re.compile(rf"\A{NUM} (.+?) ÷ {NUM} (.+?) per (.+?) = {NUM} (.+?), (.+)\.\Z")
TO_CELSIUS = re.compile(rf"\A\((\d+) °F - 32\) × 5/9 = {NUM} °C, (.+)\.\Z")
TO_FAHRENHEIT = re.compile(rf"\A(\d+) °C × 9/5 \+ 32 = {NUM} °F, (.+)\.\Z")


def spoken_amount(text: str) -> float:
    text = text.lower()
    if text in WORD_AMOUNTS:
        return WORD_AMOUNTS[text]
    whole, _, fraction = text.rpartition(" ") if "/" in text else ("", "", text)
    if "/" in fraction:
        numerator, denominator = fraction.split("/")
        return float(whole or 0) + int(numerator) / int(denominator)
    return float(text)


def parse_question(prompt: str) -> tuple[float, str, str]:
    """(amount, source unit, target unit) from the question's words alone."""
    temperature = TEMPERATURE.search(prompt)
    if temperature:
        src = temperature.group(2)[0]
        rest = prompt[: temperature.start()] + prompt[temperature.end() :]
        scales = {(m.group(1) or m.group(2))[0] for m in SCALE.finditer(rest)}
        assert scales == {"C" if src == "F" else "F"}, prompt
        return float(temperature.group(1)), src, scales.pop()
    amounts = AMOUNT_MENTION.findall(prompt)
    assert len(amounts) == 1, prompt
    amount, unit = amounts[0]
    src = QUESTION_UNITS[unit.lower()]
    others = {QUESTION_UNITS[m.lower()] for m in UNIT_MENTION.findall(prompt)} - {src}
    assert len(others) == 1, prompt
    return spoken_amount(amount), src, others.pop()


def per_unit(src: str, dst: str) -> float:
    """How many ``dst`` in one ``src``."""
    table = ML_PER if src in ML_PER else G_PER
    return table[src] / table[dst]


def true_value(amount: float, src: str, dst: str) -> float:
    if (src, dst) == ("F", "C"):
        return (amount - 32) * 5 / 9
    if (src, dst) == ("C", "F"):
        return amount * 9 / 5 + 32
    return amount * per_unit(src, dst)


def places(number: str) -> int:
    return len(number.partition(".")[2])


def half_step(number: str) -> float:
    return 0.5 * 10 ** -places(number) + 1e-9


def rounds_to(shown: str, value: str) -> bool:
    quantum = Decimal(1).scaleb(-places(value))
    return Decimal(shown).quantize(quantum, rounding=ROUND_HALF_UP) == Decimal(value)


def working_problems(working: str, amount: float, src: str, dst: str, value: str) -> list[str]:
    """Check the Working line's own arithmetic and that it starts from the question's amount."""
    if m := TO_CELSIUS.match(working) or TO_FAHRENHEIT.match(working):
        start, product, how = float(m.group(1)), m.group(2), m.group(3)
        if (src, dst) != (("F", "C") if m.re is TO_CELSIUS else ("C", "F")):
            return ["formula does not match the question's scales"]
        computed = true_value(start, src, dst)
    elif m := MULTIPLY.match(working):
        start, src_label, factor, _, product, dst_label, how = m.groups()
        start = float(start)
        if abs(float(factor) - per_unit(src, dst)) > half_step(factor):
            return [f"factor {factor} is not {per_unit(src, dst):.6g}"]
        computed = start * float(factor)
    elif m := DIVIDE.match(working):
        start, src_label, factor, _, _, product, dst_label, how = m.groups()
        start = float(start)
        if abs(float(factor) - per_unit(dst, src)) > half_step(factor):
            return [f"divisor {factor} is not {per_unit(dst, src):.6g}"]
        computed = start / float(factor)
    else:
        return ["Working line has none of the house forms"]
    problems = []
    if abs(start - amount) > 1e-9:
        problems.append(f"Working starts from {start}, the question says {amount}")
    if m.re in (MULTIPLY, DIVIDE) and (
        ANSWER_UNITS.get(src_label),
        ANSWER_UNITS.get(dst_label),
    ) != (
        src,
        dst,
    ):
        problems.append(f"Working converts {src_label} to {dst_label}, not {src} to {dst}")
    if abs(computed - float(product)) > half_step(product):
        problems.append(f"Working says {product}, the arithmetic gives {computed:.6g}")
    if how == "exact" and Decimal(product) != Decimal(value):
        problems.append(f"exact result {product} differs from the answer {value}")
    if how != "exact" and not rounds_to(product, value):
        problems.append(f"{product} does not round to {value}")
    return problems


def answer_problems(prompt: str, answer: str) -> list[str]:
    """Everything wrong with ``answer`` as the house answer to ``prompt`` (empty: correct)."""
    house = HOUSE.match(answer)
    if not house:
        return ["not in the house format"]
    amount, src, dst = parse_question(prompt)
    value, unit, working = house.group("value", "unit", "working")
    if ANSWER_UNITS.get(unit) != dst:
        return [f"answer unit {unit!r} is not {dst!r}"]
    how = working.rpartition(", ")[2].rstrip(".")
    expected = true_value(amount, src, dst)
    problems = working_problems(working, amount, src, dst, value)
    if how == "exact":
        if abs(float(value) - expected) > 1e-9:
            problems.append(f"answer {value} is not exactly {expected:.6g}")
    elif ROUNDING_PLACES.get(how) != places(value):
        problems.append(f"{how!r} but the answer {value} has {places(value)} decimals")
    elif places(value) == 0 and how != f"rounded to the nearest {NEAREST.get(dst)}":
        problems.append(f"{how!r} does not fit {dst}")
    elif abs(float(value) - expected) > half_step(value):
        problems.append(f"answer {value} is not {expected:.6g} rounded")
    return problems


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    return read_jsonl(DEMO)


def turns(example: dict) -> tuple[str, str]:
    messages = example["messages"]
    return messages[-2]["content"], messages[-1]["content"]


def word_trigrams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[\w°]+", text.lower())
    return set(zip(words, words[1:], words[2:], strict=False))


def normalised(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_demo_file_has_enough_chat_examples_ending_with_the_assistant(examples):
    assert len(examples) >= 300
    for example in examples:
        roles = [message["role"] for message in example["messages"]]
        assert roles in (["user", "assistant"], ["system", "user", "assistant"]), example
        assert all(isinstance(m["content"], str) for m in example["messages"])
    system_prompts = {e["messages"][0]["content"] for e in examples if len(e["messages"]) == 3}
    assert len(system_prompts) == 0 or (
        len(system_prompts) == 1 and len(examples) == sum(len(e["messages"]) == 3 for e in examples)
    )


def test_every_answer_is_in_the_house_format(examples):
    off_format = [turns(e)[1] for e in examples if not HOUSE.match(turns(e)[1])]
    assert off_format == []


def test_every_answer_is_arithmetically_correct(examples):
    wrong = {turns(e)[0]: answer_problems(*turns(e)) for e in examples}
    assert {prompt: problems for prompt, problems in wrong.items() if problems} == {}


@pytest.mark.parametrize(
    ("prompt", "answer"),
    [
        (  # the right working, then a wrong rounding
            "How many ml is 2 cups of milk?",
            "Answer: 474 ml\nWorking: 2 US cups × 236.6 ml = 473.2 ml, rounded to the nearest ml."
            "\nTip: Read milk at eye level.",
        ),
        (  # the metric tablespoon
            "How many ml is 3 tablespoons of honey?",
            "Answer: 45 ml\nWorking: 3 US tbsp × 15 ml = 45.0 ml, rounded to the nearest ml."
            "\nTip: Oil the spoon first.",
        ),
        (  # forgot the 32
            "What is 180 °C in Fahrenheit?",
            "Answer: 324 °F\nWorking: 180 °C × 9/5 + 32 = 324 °F, exact.\nTip: Preheat.",
        ),
        (  # the right number, the wrong amount in the working
            "Convert 1 1/2 lb of butter to grams.",
            "Answer: 680 g\nWorking: 1.25 lb × 453.6 g = 680.4 g, rounded to the nearest gram."
            "\nTip: One stick is 4 oz.",
        ),
        (  # prose, not the house format
            "How many grams is 4 oz of butter?",
            "4 oz of butter is about 113 grams, which is one US stick.",
        ),
        (  # the wrong unit
            "How many US cups is 500 ml of water?",
            "Answer: 2.1 cups\nWorking: 500 ml ÷ 236.6 ml per US cup = 2.11 US cups, rounded to "
            "one decimal.\nTip: Water weighs 1 g per ml.",
        ),
    ],
)
def test_checker_rejects_wrong_answers(prompt, answer):
    assert answer_problems(prompt, answer) != []


def test_no_two_questions_are_the_same(examples):
    prompts = [normalised(turns(e)[0]) for e in examples]
    assert len(set(prompts)) == len(prompts)


def character_5grams(text: str) -> set[str]:
    text = normalised(text)
    return {text[i : i + 5] for i in range(len(text) - 4)}


def test_no_two_examples_are_near_duplicates(examples):
    """Word 3-grams of questions and of whole examples, and character 5-grams (what MinHash
    near-duplicate linters compare) of whole examples, all under a Jaccard similarity of 0.8."""
    prompts = [word_trigrams(turns(e)[0]) for e in examples]
    wholes = [word_trigrams("\n".join(turns(e))) for e in examples]
    characters = [character_5grams("\n".join(turns(e))) for e in examples]
    worst = 0.0
    for grams in (prompts, wholes, characters):
        for i, a in enumerate(grams):
            for b in grams[i + 1 :]:
                worst = max(worst, len(a & b) / len(a | b))
    assert worst < 0.8


def test_answers_are_short_and_never_repeat_the_question(examples):
    for prompt, answer in map(turns, examples):
        assert 15 <= len(answer.split()) <= 45, answer
        assert normalised(prompt) not in normalised(answer)


def test_no_control_characters_beyond_the_answer_line_breaks(examples):
    for example in examples:
        for message in example["messages"]:
            text = (
                message["content"].replace("\n", "")
                if message["role"] == "assistant"
                else (message["content"])
            )
            assert not [c for c in text if unicodedata.category(c) == "Cc"], text


def test_dataset_linter_finds_nothing_beyond_notes():
    from trainer.datasets import prepare_dataset

    prepared = prepare_dataset(DEMO)
    assert prepared.format == "messages"
    assert [i for i in prepared.issues if i.severity != "info"] == []
    assert prepared.counts["test"] >= 30


def test_generator_rewrites_the_committed_file_byte_for_byte(tmp_path):
    output = tmp_path / "demo.jsonl"
    subprocess.run([sys.executable, str(GENERATOR), "--output", str(output)], check=True)
    assert output.read_bytes() == DEMO.read_bytes()


LAST_NUMBER = re.compile(r"(\d+(?:\.\d+)?)(?!.*\d)", re.DOTALL)


def prose_problems(prompt: str, answer: str) -> list[str]:
    """What is wrong with a plain answer, written as the base model writes (one paragraph),
    whose last number is its result."""
    if "\n" in answer:
        return ["a plain answer is one paragraph"]
    amount, src, dst = parse_question(prompt)
    value = LAST_NUMBER.search(answer).group(1)
    expected = true_value(amount, src, dst)
    if abs(float(value) - expected) > half_step(value):
        return [f"result {value} is not {expected:.6g} rounded"]
    return []


def gold_problems(prompt: str, answer: str) -> list[str]:
    if HOUSE.match(answer):
        return answer_problems(prompt, answer)
    return prose_problems(prompt, answer)


def test_gold_pairs_have_a_correct_better_and_a_faulty_worse_answer(examples):
    gold = read_jsonl(GOLD)
    assert 5 <= len(gold) <= 8
    demo_prompts = {normalised(turns(e)[0]) for e in examples}
    for pair in gold:
        assert set(pair) == {"prompt", "better", "worse"}
        assert normalised(pair["prompt"]) not in demo_prompts
        assert gold_problems(pair["prompt"], pair["better"]) == [], pair["prompt"]
        assert gold_problems(pair["prompt"], pair["worse"]) != [], pair["prompt"]
    assert len({normalised(pair["prompt"]) for pair in gold}) == len(gold)


def test_gold_pairs_mix_forms_as_the_demos_real_pairs_do():
    """A real demo pair puts the adapter's house-format answer beside the base model's prose
    (36 of 36 and 0 of 36 in the house format, README.md): so does every gold pair, or raters
    could pick out the gold items. And the better answer is sometimes the plain one, or a rater
    who simply prefers the house format would pass every gold item."""
    gold = read_jsonl(GOLD)
    forms = [(bool(HOUSE.match(p["better"])), bool(HOUSE.match(p["worse"]))) for p in gold]
    assert [better != worse for better, worse in forms] == [True] * len(gold)
    assert 0 < sum(better for better, _ in forms) < len(gold)


def test_the_plain_answer_checker_reads_the_last_number_as_the_result():
    prompt = "Convert 9 ounces of dark chocolate to grams."
    assert prose_problems(prompt, "An ounce is 28.35 g, so 9 ounces is about 255 grams.") == []
    assert prose_problems(prompt, "An ounce is 31 g, so 9 ounces is 9 x 31 = 279 grams.") != []
    assert prose_problems(prompt, "An ounce is 28.35 g, so 9 ounces is about\n255 grams.") != []
