"""Renderers: each turns the dict from ``report_build`` into one downloadable file."""

import json
from typing import Any

from django.template.loader import render_to_string

from evalhub.reports.corrections import CORRECTIONS_SHOWN
from evalhub.reports.csv_export import render_csv
from evalhub.reports.figures import report_figures
from trainer.engine.config import settings_that_apply

REPORT_FORMATS = ("html", "pdf", "csv", "json")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
PDF_UNAVAILABLE = (
    "PDF export needs WeasyPrint and its system libraries (Pango): {error}. On Debian or "
    "Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0"
)
UNKNOWN_FORMAT = "Unknown report format {fmt!r}; choose one of html, pdf, csv, json."


class ReportError(Exception):
    """A report cannot be produced in the requested format; the message says why."""


def setting_rows(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A run's hyperparameters or plan as (name, value) lines a person reads: nested settings
    flattened to "parent › child", lists joined, numbers without float noise."""
    rows: list[tuple[str, str]] = []
    for key, value in values.items():
        name = f"{prefix}{key}".replace("_", " ")
        if isinstance(value, dict):
            rows += setting_rows(value, prefix=f"{name} › ")
        else:
            rows.append((name, _setting_value(value)))
    return rows


def run_settings(hyperparameters: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """What the run page and the report show of a run's settings, as readable lines: those its
    method reads (``hyperparameters``) and the plan resolved at its start (``plan``)."""
    return {
        "hyperparameters": setting_rows(settings_that_apply(hyperparameters)),
        "plan": setting_rows(plan),
    }


def _setting_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_setting_value(v) for v in value) or "—"
    return str(value)


def report_context(report: dict[str, Any], *, link_items: bool) -> dict[str, Any]:
    """What the report's template parts need: the dict, the charts drawn from it, the run's
    settings as readable lines and how many better answers to list."""
    run = report.get("run") or {}
    return {
        "report": report,
        "figures": report_figures(report),
        "settings": run_settings(run.get("hyperparameters") or {}, run.get("plan") or {}),
        "link_items": link_items,
        "corrections_shown": CORRECTIONS_SHOWN,
    }


def render_html(report: dict[str, Any], *, for_print: bool = False) -> str:
    """One self-contained page: inline CSS and SVG, no script, nothing fetched."""
    context = report_context(report, link_items=False)
    context["for_print"] = for_print
    return render_to_string("evalhub/report_export.html", context)


def render_pdf(report: dict[str, Any]) -> bytes:
    try:
        import weasyprint
    except (ImportError, OSError) as error:  # OSError: WeasyPrint found no Pango
        raise ReportError(PDF_UNAVAILABLE.format(error=error)) from error
    return weasyprint.HTML(string=render_html(report, for_print=True)).write_pdf()


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, allow_nan=False)


def report_render(report: dict[str, Any], fmt: str) -> bytes:
    if fmt == "html":
        return render_html(report).encode()
    if fmt == "pdf":
        return render_pdf(report)
    if fmt == "csv":
        return render_csv(report).encode()
    if fmt == "json":
        return render_json(report).encode()
    raise ReportError(UNKNOWN_FORMAT.format(fmt=fmt))
