"""The bundled noisy files: every lint rule fires, on the lines the files were written to break."""

from pathlib import Path

from trainer.datasets import CODES, prepare_dataset

DEMO_DATA = Path(__file__).resolve().parents[3] / "trainer" / "demo_data"

# Written by hand beside trainer/demo_data/noisy.jsonl: what each line was made to break.
NOISY_JSONL = {
    "split-leakage": [(2, 30)],  # line 30 (test) asks line 2's question
    "empty-turn": [(9,)],
    "missing-final-assistant": [(11,)],
    "invalid-utf8": [(25,)],  # "saut\xe9": Latin-1, not UTF-8
    "control-characters": [(27,)],  # ANSI bold escapes pasted from a terminal
    "too-few-examples": [()],
    "inconsistent-system-prompt": [(3, 20)],
    "exact-duplicate": [(5, 13)],
    "mixed-speaker-labels": [(7,), (15,)],  # "human" for user, "bot" for assistant
    "speaker-marker-in-turn": [(36,)],  # "### Human:" left inside an answer: a broken split
    "near-duplicate": [(17, 18)],  # same question, lower case, "1" for "one", a reworded tip
    "response-repeats-prompt": [(21,)],
    "too-long": [(23,)],  # a whole pot-roast recipe, over 1,024 tokens
    "dataset-size": [()],
    "split-from-file": [()],
}

NOISY_TRANSCRIPT = {
    "empty-turn": [(17,)],
    "missing-final-assistant": [(19,)],
    "too-few-examples": [()],
    "mixed-speaker-labels": [(6,), (7, 17)],  # "Human:"; "AI:" and "Bot:"
    "dataset-size": [()],
}


def found(path: Path) -> dict[str, list[tuple[int, ...]]]:
    result: dict[str, list[tuple[int, ...]]] = {}
    for issue in prepare_dataset(path).issues:
        result.setdefault(issue.code, []).append(issue.lines)
    return result


def test_every_rule_fires_on_the_noisy_demo_with_its_lines():
    assert found(DEMO_DATA / "noisy.jsonl") == NOISY_JSONL
    assert set(NOISY_JSONL) == set(CODES)


def test_the_noisy_transcript_shows_mixed_speaker_prefixes():
    prepared = prepare_dataset(DEMO_DATA / "noisy_transcript.txt")
    assert prepared.format == "text"
    assert found(DEMO_DATA / "noisy_transcript.txt") == NOISY_TRANSCRIPT


def test_the_noisy_demo_is_refused_and_the_clean_demo_is_not():
    assert prepare_dataset(DEMO_DATA / "noisy.jsonl").errors == 5
    clean = prepare_dataset(DEMO_DATA / "demo.jsonl")
    assert (clean.errors, clean.warnings) == (0, 0)
