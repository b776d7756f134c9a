"""The demo's simulated expert: the house format, the figure and the preference between two
answers, on answers written the way the demo's base model and adapter write them."""

import json

from django.conf import settings

from evalhub.services.demo_expert import (
    BOTH_BAD,
    TIE,
    A,
    B,
    answer_figure,
    expert_call,
    figure_right,
    house_format,
)

REFERENCE = (
    "Answer: 473 ml\nWorking: 2 US cups × 236.6 ml = 473.2 ml, rounded to the nearest ml.\n"
    "Tip: Read milk at eye level in a clear jug; from above it looks fuller."
)
HOUSE_WRONG = (
    "Answer: 437 ml\nWorking: 2 US cups × 218.5 ml = 437 ml, rounded to the nearest ml.\n"
    "Tip: Read milk at eye level."
)
PROSE_RIGHT = "Two cups of milk is about 473 ml.\nAnswer: 473 ml"
PROSE_WRONG = "Well, two cups is roughly half a litre, depending on the cup."


def test_house_format_is_exactly_the_three_lines():
    assert house_format(REFERENCE)
    assert house_format(HOUSE_WRONG + "\n")
    assert not house_format(PROSE_RIGHT)
    assert not house_format(REFERENCE + "\nAnything else?")


def test_answer_figure_reads_number_and_unit():
    assert answer_figure(REFERENCE) == (473.0, "ml")
    assert answer_figure("Answer: 1.65 lb\nWorking: x\nTip: y") == (1.65, "lb")
    assert answer_figure("Answer: 0,5 US cups") == (0.5, "us cups")
    assert answer_figure(PROSE_WRONG) is None
    assert answer_figure("Answer: about a cup") is None


def test_figure_right_needs_number_and_unit():
    assert figure_right(REFERENCE, REFERENCE)
    assert figure_right(PROSE_RIGHT, REFERENCE)
    assert not figure_right(HOUSE_WRONG, REFERENCE)
    assert not figure_right("Answer: 473 g", REFERENCE)
    assert not figure_right(PROSE_WRONG, REFERENCE)


def test_right_figure_beats_house_format():
    call = expert_call(HOUSE_WRONG, PROSE_RIGHT, reference=REFERENCE)
    assert call.verdict == B
    assert call.correction == ""


def test_house_format_decides_between_two_wrong_figures_and_the_expert_corrects():
    call = expert_call(HOUSE_WRONG, PROSE_WRONG, reference=REFERENCE)
    assert call.verdict == A
    assert call.correction == REFERENCE


def test_equal_answers_are_a_tie_when_right_and_both_bad_when_wrong():
    assert expert_call(REFERENCE, REFERENCE, reference=REFERENCE).verdict == TIE
    both_bad = expert_call(PROSE_WRONG, PROSE_WRONG, reference=REFERENCE)
    assert both_bad.verdict == BOTH_BAD
    assert both_bad.correction == REFERENCE


def test_every_demo_reference_is_in_house_format_with_a_figure():
    path = settings.BASE_DIR / "trainer" / "demo_data" / "demo.jsonl"
    for line in path.read_text().splitlines():
        answer = json.loads(line)["messages"][-1]["content"]
        assert house_format(answer), answer
        assert figure_right(answer, answer), answer
