"""Statistics over expert judgments and automated metrics: plain Python and numpy/scipy,
no Django. Records come in unblinded (see ``records.Rating``); results are dataclasses that
``dataclasses.asdict`` turns into JSON-ready dicts. Thresholds for "insufficient data" are
documented in ``base``."""
