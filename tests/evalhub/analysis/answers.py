"""Answers in the styles the form check meets: a base model's prose, an adapter's three-line
house format (the demo's), and either at random."""

import random

# The words the answers are drawn from: a base model's kitchen-conversion ramble.
RAMBLE = (
    "to convert the grams ounces you need multiply divide by so is equal about recipe cup "
    "butter flour sugar milk oven degrees first then which gives roughly kilograms a of and"
)
WORDS = RAMBLE.split()


def prose(rng: random.Random) -> str:
    """A base model's answer: one rambling paragraph, with some arithmetic in half of them."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(25, 70))]
    for i in range(8, len(words), rng.randint(8, 15)):
        words[i] += rng.choice((",", ".", ""))
    if rng.random() < 0.5:
        a, b = rng.randint(2, 500), rng.randint(2, 30)
        words.insert(rng.randrange(len(words)), f"{a} x {b} = {a * b}")
    return " ".join(words).capitalize() + rng.choice((".", "", "."))


def house(rng: random.Random) -> str:
    """An adapter's answer in the demo's three-line house format."""
    amount = rng.randint(1, 900)
    tip = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).capitalize()
    return (
        f"Answer: {amount * 28.35:.0f} g\n"
        f"Working: {amount} oz × 28.35 g = {amount * 28.35:.1f} g, rounded to the nearest gram.\n"
        f"Tip: {tip}."
    )


def anything(rng: random.Random) -> str:
    return house(rng) if rng.random() < 0.5 else prose(rng)
