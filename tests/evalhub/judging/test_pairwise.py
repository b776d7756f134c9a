"""The pairwise prompt, the reading of replies and the two orders, without Django."""

import pytest

from evalhub.judging.pairwise import (
    AB,
    AMBIGUOUS,
    BA,
    BAD_TEMPLATE,
    NO_CHOICE,
    PairText,
    ReplyError,
    check_template,
    combine,
    parse_reply,
    render,
    to_storage,
)

PAIR = PairText(prompt="Capital of France?", output_a="Paris.", output_b="Lyon.", reference="Paris")


def test_order_ab_shows_output_a_first_and_ba_output_b_first():
    ab = render(PAIR, AB)[0]["content"]
    ba = render(PAIR, BA)[0]["content"]
    assert ab.index("Paris.") < ab.index("Lyon.")
    assert ba.index("Lyon.") < ba.index("Paris.")
    assert "Answer with A, B or tie" in ab


def test_criteria_guidelines_and_reference_go_into_the_prompt_only_when_given():
    bare = render(PAIR, AB)[0]["content"]
    full = render(
        PAIR,
        AB,
        criteria=["accuracy", "tone"],
        guidelines="Prefer short answers.",
        use_reference=True,
    )[0]["content"]
    assert "accuracy, tone" in full and "Prefer short answers." in full
    assert "[Reference answer]\nParis\n" in full
    assert "accuracy" not in bare and "Reference" not in bare and "Guidelines" not in bare


def test_a_custom_template_gets_the_answers_in_shown_order():
    messages = render(PAIR, BA, template="Q: {prompt}\n1: {answer_a}\n2: {answer_b}")
    assert messages == [{"role": "user", "content": "Q: Capital of France?\n1: Lyon.\n2: Paris."}]


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{prompt} {answer_a}", "no {answer_b}"),
        ("{answer_a} {answer_b} {system}", "unknown {system}"),
        ("{answer_a} {answer_b} {", "Single '{' encountered in format string"),
    ],
)
def test_a_template_with_unknown_or_missing_fields_is_refused(template, problem):
    with pytest.raises(ValueError) as error:
        check_template(template)
    fields = "prompt, answer_a, answer_b, criteria, guidelines, reference"
    assert str(error.value).startswith(BAD_TEMPLATE.format(fields=fields, problem=problem))


@pytest.mark.parametrize(
    ("reply", "choice"),
    [
        ("A", "A"),
        (" b.", "B"),
        ("Tie", "tie"),
        ("Answer: B", "B"),
        ("**A**", "A"),
        ("[[B]]", "B"),
        ("Answer A is clearly better: it names the capital.", "A"),
        ("Both answers miss the point, [[tie]] since A and B are equally wrong.", "tie"),
        ("It's a tie.", "tie"),
        # The verdict comes first; what follows may name the other answer.
        ("Answer A is the better choice. Answer B, while correct, misses the unit.", "A"),
        ("B is better!\nA forgets the question.", "B"),
    ],
)
def test_replies_that_name_one_choice_are_read(reply, choice):
    assert parse_reply(reply) == choice


@pytest.mark.parametrize("reply", ["", "Sure! Here is my evaluation:", "Both are fine answers."])
def test_a_reply_naming_no_choice_is_an_error(reply):
    with pytest.raises(ReplyError) as error:
        parse_reply(reply)
    assert str(error.value) == NO_CHOICE.format(reply=reply)


def test_a_reply_naming_two_choices_is_an_error_not_a_guess():
    reply = "Answer A is better than answer B."
    with pytest.raises(ReplyError) as error:
        parse_reply(reply)
    assert str(error.value) == AMBIGUOUS.format(found="A, B", reply=reply)


def test_shown_choices_map_back_to_storage_terms():
    assert [to_storage(c, AB) for c in ("A", "B", "tie")] == ["a", "b", "tie"]
    assert [to_storage(c, BA) for c in ("A", "B", "tie")] == ["b", "a", "tie"]


def test_orders_that_agree_keep_their_choice_and_a_flip_is_a_tie():
    assert combine("a", "a") == ("a", False)
    assert combine("tie", "tie") == ("tie", False)
    # The judge picked whatever it was shown first: position, not content.
    assert combine("a", "b") == ("tie", True)
    assert combine("b", "tie") == ("tie", True)
