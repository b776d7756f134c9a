"""Generate the bundled demo dataset: questions to a kitchen "conversion desk".

Every reference answer has the same three-line house format, which SmolLM2-135M-Instruct does
not produce by itself:

    Answer: 473 ml
    Working: 2 US cups × 236.6 ml = 473.2 ml, rounded to the nearest ml.
    Tip: Read milk at eye level in a clear jug; from above it looks fuller.

``python trainer/demo_data/make_demo.py`` rewrites demo.jsonl beside this file. The output is
byte-identical for a given SEED: stdlib only, exact fractions for all arithmetic, a seeded
``random.Random`` and no iteration over sets.
"""

import argparse
import json
import random
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True)
class Unit:
    label: str  # how the house answer writes it (plural)
    one: str  # ... and singular
    words: tuple[str, ...]  # how customers write it after a plural amount, or as the target
    singular_words: tuple[str, ...]  # after "1", "a", "1/2", "half a"


# 1 US gallon = 231 cubic inches = 3785.411784 ml exactly; the other US volumes divide it.
ML_PER_US_GALLON = Fraction("3785.411784")
G_PER_OZ = Fraction("28.349523125")  # international avoirdupois ounce, exact by definition
G_PER_LB = Fraction("453.59237")

UNITS = {
    "tsp": Unit("US tsp", "US tsp", ("teaspoons", "tsp"), ("teaspoon", "tsp")),
    "tbsp": Unit("US tbsp", "US tbsp", ("tablespoons", "tbsp", "Tbsp"), ("tablespoon", "tbsp")),
    "floz": Unit("US fl oz", "US fl oz", ("fluid ounces", "fl oz"), ("fluid ounce", "fl oz")),
    "cup": Unit("US cups", "US cup", ("cups", "US cups"), ("cup", "US cup")),
    "pint": Unit("US pints", "US pint", ("pints", "US pints"), ("pint", "US pint")),
    "quart": Unit("US quarts", "US quart", ("quarts", "US quarts"), ("quart",)),
    "ml": Unit("ml", "ml", ("ml", "mL", "millilitres", "milliliters"), ("ml",)),
    "l": Unit("l", "l", ("litres", "liters"), ("litre", "liter")),
    "g": Unit("g", "g", ("grams", "g"), ("gram",)),
    "kg": Unit("kg", "kg", ("kilograms", "kg", "kilos"), ("kilogram", "kilo")),
    "oz": Unit("oz", "oz", ("ounces", "oz"), ("ounce",)),
    "lb": Unit("lb", "lb", ("pounds", "lb", "lbs"), ("pound", "lb")),
}


@dataclass(frozen=True)
class Conversion:
    kind: str  # which items it suits: "liquid", "spoon" or "mass"
    src: str
    dst: str
    exact: Fraction  # dst units in one src unit
    shown: str  # factor on the Working line: dst per src, or src per dst when dividing
    divide: bool
    places: int | None  # decimals in the answer; None: whole-number US factor, result exact
    amounts: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst}"


CUP = ML_PER_US_GALLON / 16
FLOZ = ML_PER_US_GALLON / 128
TBSP = ML_PER_US_GALLON / 256
TSP = ML_PER_US_GALLON / 768
PINT = ML_PER_US_GALLON / 8
QUART = ML_PER_US_GALLON / 4
CUP_AMOUNTS = ("1/4", "1/2", "3/4", "1", "5/4", "3/2", "2", "5/2", "3", "4")
ML_TO_CUP = ("100", "125", "150", "200", "250", "300", "350", "400", "450", "500", "600", "750")
OZ_AMOUNTS = ("2", "3", "4", "5", "6", "7", "8", "10", "12", "14", "16")
G_TO_OZ = ("25", "50", "75", "100", "125", "150", "200", "225", "250", "300", "350", "400", "500")
LB_AMOUNTS = ("1/2", "1", "5/4", "3/2", "2", "5/2", "3", "4", "5")
C = Conversion
CONVERSIONS = (
    C("liquid", "cup", "ml", CUP, "236.6", False, 0, CUP_AMOUNTS),
    C("liquid", "floz", "ml", FLOZ, "29.57", False, 0, ("2", "4", "6", "8", "10", "12", "16")),
    C("liquid", "pint", "ml", PINT, "473.2", False, 0, ("1", "3/2", "2", "3")),
    C("liquid", "quart", "ml", QUART, "946.4", False, 0, ("1/2", "1", "3/2", "2", "3")),
    C("liquid", "ml", "cup", 1 / CUP, "236.6", True, 1, ML_TO_CUP),
    C("liquid", "ml", "floz", 1 / FLOZ, "29.57", True, 1, ("50", "100", "150", "330", "400")),
    C("liquid", "l", "cup", 1000 / CUP, "4.227", False, 1, ("1/2", "1", "3/2", "2", "5/2", "3")),
    C("liquid", "cup", "floz", Fraction(8), "8", False, None, CUP_AMOUNTS),
    C("liquid", "cup", "tbsp", Fraction(16), "16", False, None, ("1/4", "1/2", "3/4", "1", "3/2")),
    C("liquid", "pint", "cup", Fraction(2), "2", False, None, ("1", "3/2", "2", "3", "4")),
    C("liquid", "quart", "cup", Fraction(4), "4", False, None, ("1/2", "1", "3/2", "2", "3")),
    C("spoon", "tsp", "ml", TSP, "4.93", False, 0, ("1/2", "1", "3/2", "2", "5/2", "3", "4")),
    C("spoon", "tbsp", "ml", TBSP, "14.79", False, 0, ("1", "3/2", "2", "3", "4", "5", "6")),
    C("spoon", "ml", "tsp", 1 / TSP, "4.93", True, 1, ("2", "5", "7", "10", "12", "15")),
    C("spoon", "ml", "tbsp", 1 / TBSP, "14.79", True, 1, ("10", "20", "25", "30", "45", "60")),
    C("spoon", "tbsp", "tsp", Fraction(3), "3", False, None, ("1", "3/2", "2", "5/2", "3", "4")),
    C("spoon", "tsp", "tbsp", Fraction(1, 3), "3", True, None, ("3/2", "3", "9/2", "6")),
    C("mass", "oz", "g", G_PER_OZ, "28.35", False, 0, OZ_AMOUNTS),
    C("mass", "g", "oz", 1 / G_PER_OZ, "28.35", True, 1, G_TO_OZ),
    C("mass", "lb", "g", G_PER_LB, "453.6", False, 0, LB_AMOUNTS),
    C("mass", "lb", "kg", G_PER_LB / 1000, "0.4536", False, 2, LB_AMOUNTS),
    C("mass", "g", "lb", 1 / G_PER_LB, "453.6", True, 2, ("250", "400", "600", "750", "900")),
    C("mass", "kg", "lb", 1000 / G_PER_LB, "2.2046", False, 1, ("1/2", "1", "6/5", "3/2", "2")),
    C("mass", "lb", "oz", Fraction(16), "16", False, None, ("1/4", "1/2", "3/4", "3/2", "2")),
)


def conversions_for(kind: str) -> list[Conversion]:
    return [conversion for conversion in CONVERSIONS if conversion.kind == kind]


@dataclass(frozen=True)
class Item:
    kinds: tuple[str, ...]
    tip: str


ITEMS = {
    "milk": Item(("liquid",), "Read milk at eye level in a clear jug; from above it looks fuller."),
    "water": Item(("liquid",), "Water weighs about 1 g per ml, so a scale works too."),
    "heavy cream": Item(("liquid",), "Chill the cream and the bowl; cold cream whips faster."),
    "buttermilk": Item(("liquid",), "No buttermilk? Stir 1 tbsp lemon juice into 1 cup of milk."),
    "chicken stock": Item(("liquid",), "Use low-salt stock and season at the end."),
    "coconut milk": Item(("liquid",), "Shake the can first; the cream separates from the water."),
    "orange juice": Item(("liquid",), "One orange gives roughly 60 to 80 ml of juice."),
    "red wine": Item(("liquid",), "Simmer the wine a few minutes to cook off its raw edge."),
    "vegetable oil": Item(("liquid",), "Pour oil into a jug on a flat counter and read it level."),
    "olive oil": Item(
        ("spoon",), "Keep olive oil away from the stove; heat and light turn it stale."
    ),
    "vanilla extract": Item(("spoon",), "Measure over a cup, not the bowl, so a spill is no loss."),
    "lemon juice": Item(("spoon",), "Roll the lemon on the counter first; it gives more juice."),
    "soy sauce": Item(("spoon",), "Soy sauce is salty; taste before adding more salt."),
    "honey": Item(("spoon",), "Oil the spoon first so the honey slides straight off."),
    "maple syrup": Item(("spoon",), "Use pure maple syrup; pancake syrup is mostly corn syrup."),
    "cider vinegar": Item(("spoon",), "Add vinegar a little at a time and taste as you go."),
    "baking powder": Item(
        ("spoon",), "Level the spoon with a knife; too much leaves a bitter taste."
    ),
    "baking soda": Item(("spoon",), "Baking soda is about 3 times stronger than baking powder."),
    "fine salt": Item(("spoon",), "Flaky salt is lighter, so a spoon of it is less salty."),
    "ground cinnamon": Item(("spoon",), "Ground spices fade; replace the jar after about a year."),
    "all-purpose flour": Item(("mass",), "Weigh flour when you can; scooped cups vary by 20%."),
    "granulated sugar": Item(("mass",), "Caster sugar can replace granulated sugar gram for gram."),
    "butter": Item(("mass",), "One US stick of butter is 4 oz, about 113 g."),
    "dark chocolate": Item(("mass",), "Chop chocolate evenly so it all melts at the same rate."),
    "cheddar": Item(("mass",), "Grate cheddar straight from the fridge; warm cheese smears."),
    "parmesan": Item(("mass",), "Finely grated parmesan is fluffy, so weigh it, don't pack it."),
    "almonds": Item(("mass",), "Toast almonds in a dry pan until fragrant, then let them cool."),
    "brown sugar": Item(("mass",), "Keep brown sugar airtight so it stays soft."),
    "rolled oats": Item(("mass",), "Toast oats in a dry pan for a nuttier flavour."),
    "basmati rice": Item(("mass",), "Allow about 75 g of uncooked rice per person."),
    "dried pasta": Item(("mass",), "Allow about 100 g of dried pasta per person for a main."),
    "ground beef": Item(("mass",), "Cook ground beef to 71 °C (160 °F) in the middle."),
    "chicken breast": Item(("mass",), "Chicken is done at 74 °C (165 °F) in the thickest part."),
    "potatoes": Item(("mass",), "Cut potatoes the same size so they cook evenly."),
}


@dataclass(frozen=True)
class Dish:
    fahrenheit: tuple[int, ...]  # oven settings an American recipe would give
    celsius: tuple[int, ...]  # ... and a European one
    tip: str


DISHES = {
    "roast chicken": Dish(
        (375, 400, 425, 450), (180, 190, 200, 220), "Rest it 10 to 15 minutes before carving."
    ),
    "sourdough bread": Dish(
        (450, 475, 500), (230, 240, 250), "Bake covered for the first 20 minutes to trap steam."
    ),
    "chocolate chip cookies": Dish(
        (340, 350, 360, 375), (170, 175, 180, 190), "Bake one tray at a time on the middle shelf."
    ),
    "brownies": Dish(
        (325, 340, 350), (160, 170, 175, 180), "Take them out while a skewer shows moist crumbs."
    ),
    "pizza": Dish(
        (475, 500, 525, 550), (240, 250, 260, 275), "Preheat the stone or steel for 30 minutes."
    ),
    "cheesecake": Dish(
        (300, 315, 325),
        (140, 150, 160),
        "Cool it in the switched-off oven, door ajar, to limit cracks.",
    ),
    "meringues": Dish(
        (200, 225, 250), (100, 110, 120), "Leave them to dry in the switched-off oven for an hour."
    ),
    "roast potatoes": Dish(
        (400, 425, 440), (200, 210, 220), "Heat the fat in the tray first so the potatoes sizzle."
    ),
    "banana bread": Dish(
        (325, 340, 350),
        (160, 170, 175, 180),
        "Tent with foil if the top browns before the middle sets.",
    ),
    "blueberry muffins": Dish(
        (375, 390, 400), (180, 190, 200), "Toss the berries in a little flour so they don't sink."
    ),
    "lasagne": Dish(
        (350, 375, 390), (180, 190, 200), "Let it rest 15 minutes so the layers hold when cut."
    ),
    "salmon fillets": Dish(
        (375, 400, 425), (190, 200, 210), "Salmon is done at 63 °C (145 °F) and flakes easily."
    ),
    "pulled pork": Dish(
        (250, 275, 300), (120, 135, 140, 150), "It shreds easily at about 93 °C (200 °F) inside."
    ),
    "scones": Dish(
        (400, 425, 450), (210, 220, 230), "Cut straight down without twisting so they rise evenly."
    ),
    "apple pie": Dish(
        (375, 400, 425), (190, 200, 220), "Bake on a low shelf so the bottom crust cooks through."
    ),
    "roast vegetables": Dish(
        (400, 425, 450), (200, 220, 230), "Spread them in one layer so they roast, not steam."
    ),
    "shortbread": Dish(
        (300, 325, 340), (150, 160, 170), "Chill the dough before baking so it keeps its shape."
    ),
    "focaccia": Dish(
        (425, 430, 450), (215, 220, 230), "Oil the tin generously for a crisp, golden base."
    ),
}

# {q} amount as the customer writes it, {u} its unit, {item}, {dst} the unit wanted.
QUESTION_TEMPLATES = {
    "any": (
        "How many {dst} is {q} {u} of {item}?",
        "How many {dst} are in {q} {u} of {item}?",
        "Convert {q} {u} of {item} to {dst}.",
        "What's {q} {u} of {item} in {dst}?",
        "My recipe calls for {q} {u} of {item}. How much is that in {dst}?",
        "{q} {u} of {item}: how many {dst} is that?",
        "Quick one: {q} {u} {item} in {dst}, please.",
        "Can you turn {q} {u} of {item} into {dst}?",
        "The recipe says {q} {u} {item}. What is that in {dst}?",
        "Please convert {q} {u} of {item} into {dst} for me.",
        "I'm scaling a recipe that needs {q} {u} of {item}. What is it in {dst}?",
        "What does {q} {u} of {item} come to in {dst}?",
        "Express {q} {u} of {item} in {dst}.",
        "How many {dst} of {item} make {q} {u}?",
        "{item}, {q} {u}. In {dst}?",
        "I need {q} {u} of {item} in {dst}. How much is that?",
        "What is {q} {u} of {item} when measured in {dst}?",
        "For {q} {u} of {item}, how many {dst} should I measure?",
        "Hi! How much is {q} {u} of {item} in {dst}?",
        "My recipe lists {q} {u} of {item}, but I think in {dst}. Help?",
        "Converting {q} {u} of {item} to {dst}: what do I get?",
        "If a recipe needs {q} {u} of {item}, what's that in {dst}?",
        "{q} {u} of {item} equals how many {dst}?",
        "Tell me {q} {u} of {item} in {dst}.",
        "What would {q} {u} of {item} be in {dst}?",
        "Shopping list says {q} {u} of {item}. How many {dst} is that?",
    ),
    "liquid": (
        "My measuring jug is marked in {dst}. How much is {q} {u} of {item}?",
        "I'm pouring {q} {u} of {item}. What should the jug read in {dst}?",
        "Jug question: {q} {u} of {item}, shown in {dst}?",
    ),
    "spoon": (
        "I only have {dst} measures. How much is {q} {u} of {item}?",
        "Spoon question: {q} {u} of {item}, how many {dst}?",
        "Baking today and the recipe wants {q} {u} of {item}. In {dst}?",
    ),
    "mass": (
        "My kitchen scale shows {dst}. How much {item} is {q} {u}?",
        "I'm weighing {item}: {q} {u} is how many {dst}?",
        "The shop sold me {q} {u} of {item}. What is that in {dst}?",
    ),
}

# {t} the temperature as written (with its scale), {dst} the scale wanted, {dish}.
TEMPERATURE_TEMPLATES = {
    "any": (
        "Convert {t} to {dst} for {dish}.",
        "What is {t} in {dst}? I'm making {dish}.",
        "The {dish} recipe says to bake at {t}. What's that in {dst}?",
        "{dish} at {t}: what should my oven say in {dst}?",
        "Set the oven to {t} for {dish}. How much is that in {dst}?",
        "How hot is {t} in {dst}? It's for {dish}.",
        "Heat the oven to {t} for {dish}: what's the {dst} setting?",
        "I need the {dst} version of {t} for {dish}.",
        "Oven temperature for {dish} is {t}. Convert to {dst}, please.",
        "What {dst} setting matches {t} for {dish}?",
    ),
    "to_celsius": (
        "An American recipe for {dish} says {t}. What should I set in {dst}?",
        "My oven dial is in {dst} and the {dish} recipe says {t}. What do I set?",
    ),
    "to_fahrenheit": (
        "A British recipe for {dish} says {t}. What is that in {dst}?",
        "My oven dial is in {dst} and the {dish} recipe says {t}. What do I set?",
    ),
}

SEED = 20250611
COUNT = 360
OUTPUT = Path(__file__).with_name("demo.jsonl")

# Which kind of question each slot asks, cycled: 7 cup-sized liquids, 6 weights, 4 spoon measures
# and 3 oven temperatures in every 20, roughly how often a kitchen asks each.
SCHEDULE = (
    *("liquid", "mass", "spoon", "liquid", "temperature"),
    *("mass", "liquid", "spoon", "mass", "liquid"),
    *("temperature", "mass", "liquid", "spoon", "mass"),
    *("liquid", "temperature", "mass", "liquid", "spoon"),
)
# Near-duplicate guards, as Jaccard similarity ceilings, well under the 0.8 at which the dataset
# linter (MinHash, an estimate) starts to warn: word 3-grams of the question; word 3-grams of the
# whole example with digits masked, for checks that ignore numbers; character 5-grams of the
# whole example, what the linter itself compares.
MAX_PROMPT_SIMILARITY = 0.6
MAX_EXAMPLE_SIMILARITY = 0.7
MAX_CHARACTER_SIMILARITY = 0.7
MAX_SAME_ITEM_CONVERSION = 2
MAX_SAME_CONVERSION_AMOUNT = 3
MAX_ATTEMPTS = 200_000

ROUNDING = {0: "rounded to the nearest {unit}", 1: "rounded to one decimal"}
ROUNDING[2] = "rounded to two decimals"
WHOLE_UNIT_NAMES = {"ml": "ml", "g": "gram", "°C": "degree", "°F": "degree"}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 8: "eight", 10: "ten"}


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str
    key: tuple[str, str, str]  # (item or dish, conversion, amount): asked once only


def round_half_up(value: Fraction, places: int) -> Fraction:
    scale = 10**places
    return Fraction(int(value * scale + Fraction(1, 2)), scale)


def decimal(value: Fraction, places: int) -> str:
    """``value`` rounded half-up and written with exactly ``places`` decimals."""
    scaled = int(round_half_up(value, places) * 10**places)
    if places == 0:
        return str(scaled)
    whole, frac = divmod(scaled, 10**places)
    return f"{whole}.{frac:0{places}d}"


def plain(value: Fraction) -> str:
    """Shortest exact decimal spelling of a terminating fraction (1.5, 0.25, 48)."""
    for places in range(6):
        if (value * 10**places).denominator == 1:
            return decimal(value, places)
    raise ValueError(f"{value} has no short decimal form")


def spoken(amount: Fraction, rng: random.Random) -> tuple[str, bool]:
    """One way a customer writes ``amount``, and whether the unit then reads singular."""
    whole, part = divmod(amount, 1)
    whole = int(whole)
    forms: list[tuple[str, bool]]
    if part == 0:
        forms = [(str(whole), whole == 1)]
        if whole == 1:
            forms += [("a", True), ("one", True)]
        if whole in NUMBER_WORDS:
            forms.append((NUMBER_WORDS[whole], False))
    elif whole == 0 and part in (Fraction(1, 2), Fraction(1, 4), Fraction(3, 4)):
        fraction = f"{part.numerator}/{part.denominator}"
        forms = [(fraction, True), (plain(part), False)]
        forms.append(("half a", True) if part == Fraction(1, 2) else (fraction, True))
    elif part.denominator in (2, 4):
        forms = [(f"{whole} {part.numerator}/{part.denominator}", False), (plain(amount), False)]
        if amount == Fraction(3, 2):
            forms.append(("one and a half", False))
    else:
        forms = [(plain(amount), False)]
    return rng.choice(forms)


def unit_label(unit: str, value: Fraction) -> str:
    return UNITS[unit].one if value == 1 else UNITS[unit].label


def rounding_phrase(places: int, unit: str) -> str:
    return ROUNDING[places].format(unit=WHOLE_UNIT_NAMES.get(unit, unit))


def convert(conversion: Conversion, amount: Fraction) -> tuple[str, str] | None:
    """The Answer value and the Working line, or None when rounding the shown factor would give
    a different answer from the exact factor (the answer must be right, not just consistent)."""
    src, dst = conversion.src, conversion.dst
    shown = Fraction(conversion.shown)
    if conversion.divide:
        product = amount / shown
        step = f"÷ {conversion.shown} {UNITS[src].label} per {UNITS[dst].one}"
    else:
        product = amount * shown
        step = f"× {conversion.shown} {UNITS[dst].label}"
    exact = amount * conversion.exact
    if conversion.places is None:
        value, shown_product, how = plain(exact), plain(product), "exact"
    else:
        shown_product = decimal(product, conversion.places + 1)
        value = decimal(Fraction(shown_product), conversion.places)
        if value != decimal(exact, conversion.places):
            return None
        how = rounding_phrase(conversion.places, dst)
    result = Fraction(shown_product)
    working = (
        f"{plain(amount)} {unit_label(src, amount)} {step} = "
        f"{shown_product} {unit_label(dst, result)}, {how}."
    )
    return f"{value} {unit_label(dst, Fraction(value))}", working


def temperature_working(degrees: int, to_celsius: bool) -> tuple[str, str]:
    if to_celsius:
        exact, formula, unit = Fraction(degrees - 32) * 5 / 9, f"({degrees} °F - 32) × 5/9", "°C"
    else:
        exact, formula, unit = Fraction(degrees) * 9 / 5 + 32, f"{degrees} °C × 9/5 + 32", "°F"
    if exact.denominator == 1:
        return f"{exact} {unit}", f"{formula} = {exact} {unit}, exact."
    how = rounding_phrase(0, unit)
    return f"{decimal(exact, 0)} {unit}", f"{formula} = {decimal(exact, 1)} {unit}, {how}."


def fill(template: str, **slots: str) -> str:
    text = template.format(**slots)
    return text[0].upper() + text[1:]


def unit_example(kind: str, rng: random.Random) -> Example | None:
    item = rng.choice([name for name, info in ITEMS.items() if kind in info.kinds])
    conversion = rng.choice(conversions_for(kind))
    amount = Fraction(rng.choice(conversion.amounts))
    converted = convert(conversion, amount)
    if converted is None:
        return None
    value, working = converted
    quantity, singular = spoken(amount, rng)
    src, dst = UNITS[conversion.src], UNITS[conversion.dst]
    templates = QUESTION_TEMPLATES["any"] + QUESTION_TEMPLATES[kind]
    prompt = fill(
        rng.choice(templates),
        q=quantity,
        u=rng.choice(src.singular_words if singular else src.words),
        item=item,
        dst=rng.choice(dst.words),
    )
    answer = f"Answer: {value}\nWorking: {working}\nTip: {ITEMS[item].tip}"
    return Example(prompt, answer, (item, conversion.name, plain(amount)))


def temperature_example(rng: random.Random) -> Example:
    dish = rng.choice(sorted(DISHES))
    to_celsius = rng.random() < 0.55
    temps = DISHES[dish].fahrenheit if to_celsius else DISHES[dish].celsius
    degrees = rng.choice(temps)
    src_forms = ("{t}°F", "{t} °F", "{t} F", "{t} degrees Fahrenheit", "{t} degrees F")
    if not to_celsius:
        src_forms = ("{t}°C", "{t} °C", "{t}C", "{t} degrees Celsius", "{t} degrees C")
    dst_forms = ("Celsius", "°C") if to_celsius else ("Fahrenheit", "°F")
    direction = "to_celsius" if to_celsius else "to_fahrenheit"
    templates = TEMPERATURE_TEMPLATES["any"] + TEMPERATURE_TEMPLATES[direction]
    prompt = fill(
        rng.choice(templates),
        t=rng.choice(src_forms).format(t=degrees),
        dst=rng.choice(dst_forms),
        dish=dish,
    )
    value, working = temperature_working(degrees, to_celsius)
    answer = f"Answer: {value}\nWorking: {working}\nTip: {DISHES[dish].tip}"
    return Example(prompt, answer, (dish, direction, str(degrees)))


def word_grams(text: str, mask_digits: bool = False) -> frozenset[tuple[str, ...]]:
    text = text.lower()
    if mask_digits:
        text = re.sub(r"\d+", "0", text)
    words = re.findall(r"[\w°]+", text)
    return frozenset(zip(words, words[1:], words[2:], strict=False))


def character_grams(text: str) -> frozenset[str]:
    text = " ".join(re.findall(r"\w+", text.lower()))
    return frozenset(text[i : i + 5] for i in range(len(text) - 4))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def fingerprints(example: Example) -> tuple[frozenset, ...]:
    whole = f"{example.prompt}\n{example.answer}"
    return word_grams(example.prompt), word_grams(whole, True), character_grams(whole)


CEILINGS = (MAX_PROMPT_SIMILARITY, MAX_EXAMPLE_SIMILARITY, MAX_CHARACTER_SIMILARITY)


def build(seed: int = SEED, count: int = COUNT) -> list[Example]:
    """Draw candidates in SCHEDULE order and keep those that are right and unlike the rest."""
    rng = random.Random(seed)
    accepted: list[Example] = []
    kept: list[tuple[frozenset, ...]] = []
    used: dict[tuple[str, ...], int] = {}
    for _ in range(MAX_ATTEMPTS):
        if len(accepted) == count:
            return accepted
        kind = SCHEDULE[len(accepted) % len(SCHEDULE)]
        example = temperature_example(rng) if kind == "temperature" else unit_example(kind, rng)
        if example is None:
            continue
        item, conversion, amount = example.key
        limits = {
            example.key: 1,
            (item, conversion): MAX_SAME_ITEM_CONVERSION,
            (conversion, amount): MAX_SAME_CONVERSION_AMOUNT,
        }
        if any(used.get(key, 0) >= limit for key, limit in limits.items()):
            continue
        prints = fingerprints(example)
        if any(
            jaccard(mine, theirs) > ceiling
            for other in kept
            for mine, theirs, ceiling in zip(prints, other, CEILINGS, strict=True)
        ):
            continue
        accepted.append(example)
        kept.append(prints)
        for key in limits:
            used[key] = used.get(key, 0) + 1
    raise RuntimeError(f"only {len(accepted)} of {count} examples after {MAX_ATTEMPTS} attempts")


def render(examples: list[Example]) -> str:
    lines = []
    for example in examples:
        messages = [
            {"role": "user", "content": example.prompt},
            {"role": "assistant", "content": example.answer},
        ]
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write the JSONL")
    args = parser.parse_args(argv)
    args.output.write_text(render(build()), encoding="utf-8")


if __name__ == "__main__":
    main()
