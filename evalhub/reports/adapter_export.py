"""A run's adapter as something to ship: the peft files as training saved them and a README.md
model card, written to a directory (``manage.py export_adapter``) or a zip (the run page and
the API). The merged model, written only by the command, is the trainer engine's job."""

import io
import zipfile
from pathlib import Path

from evalhub.reports.model_card import model_card
from evalhub.selectors.model_card import model_card_data
from trainer.models import FineTuneRun

ERROR_NO_ADAPTER = "Run {run_id} has no adapter (it has not finished training)."
ERROR_ADAPTER_MISSING = "Run {run_id}: the adapter directory {path} does not exist."
ERROR_OUT_NOT_EMPTY = "{path} exists and is not empty; pass --force to write into it."
ERROR_OUT_NOT_DIR = "{path} exists and is not a directory."
CARD = "README.md"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
MERGED = "merged"


class AdapterExportError(ValueError):
    """The run cannot be exported there; the message is one of the constants above."""


def adapter_files(run: FineTuneRun) -> list[Path]:
    """The files of the run's saved adapter, refused when it has none."""
    if not run.adapter_path:
        raise AdapterExportError(ERROR_NO_ADAPTER.format(run_id=run.pk))
    source = Path(run.adapter_path)
    if not source.is_dir():
        raise AdapterExportError(ERROR_ADAPTER_MISSING.format(run_id=run.pk, path=source))
    # The trainer's own README (if any) gives way to the model card.
    files = (p for p in source.rglob("*") if p.is_file())
    return sorted(p for p in files if p.relative_to(source) != Path(CARD))


def adapter_export_write(*, run: FineTuneRun, out: Path, force: bool = False) -> list[Path]:
    """Copy the adapter files and write the model card into ``out``; the paths written."""
    files = adapter_files(run)
    if out.exists() and not out.is_dir():
        raise AdapterExportError(ERROR_OUT_NOT_DIR.format(path=out))
    if out.is_dir() and any(out.iterdir()) and not force:
        raise AdapterExportError(ERROR_OUT_NOT_EMPTY.format(path=out))
    card = model_card(model_card_data(run=run))
    source = Path(run.adapter_path)
    written = []
    for path in files:
        target = out / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        written.append(target)
    out.mkdir(parents=True, exist_ok=True)
    (out / CARD).write_text(card, encoding="utf-8")
    return [*written, out / CARD]


def adapter_zip(*, run: FineTuneRun) -> bytes:
    """The same files as ``adapter_export_write``, in a zip under one folder named for the run."""
    files = adapter_files(run)
    source = Path(run.adapter_path)
    folder = zip_name(run).removesuffix(".zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            name = f"{folder}/{path.relative_to(source).as_posix()}"
            # Weights barely compress and deflating them takes seconds: stored as they are.
            stored = path.suffix in WEIGHT_SUFFIXES
            archive.write(path, name, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
        archive.writestr(f"{folder}/{CARD}", model_card(model_card_data(run=run)))
    return buffer.getvalue()


def zip_name(run: FineTuneRun) -> str:
    return f"adapter-run-{run.pk}.zip"
