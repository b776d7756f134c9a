import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evalhub.management.commands.export_report import (
    UNKNOWN_FORMAT,
    UNKNOWN_STUDY,
    UNWRITABLE,
)
from evalhub.reports import render
from tests.evalhub.report_fixtures import build_study


@pytest.fixture
def study(db):
    return build_study()


def test_exports_json_with_the_studys_numbers(study, tmp_path, capsys):
    out = tmp_path / "report.json"
    call_command("export_report", "--study", study.pk, "--format", "json", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["study"]["id"] == study.pk and len(data["judgments"]) == 24
    assert "wrote json report" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.parametrize("fmt", ["html", "csv"])
def test_exports_text_formats(study, tmp_path, fmt):
    out = tmp_path / f"report.{fmt}"
    call_command("export_report", "--study", study.pk, "--format", fmt, "--out", str(out))
    assert out.stat().st_size > 0


def test_unknown_study_exits_2(db, tmp_path):
    with pytest.raises(CommandError) as error:
        call_command("export_report", "--study", 424242, "--format", "json", "--out", "x.json")
    assert error.value.returncode == 2
    assert str(error.value) == UNKNOWN_STUDY.format(study=424242)


def test_unknown_format_exits_2(study, tmp_path):
    with pytest.raises(CommandError) as error:
        call_command(
            "export_report", "--study", study.pk, "--format", "xlsx", "--out", str(tmp_path / "r")
        )
    assert error.value.returncode == 2
    assert str(error.value) == UNKNOWN_FORMAT.format(fmt="xlsx")


def test_unwritable_path_exits_2(study, tmp_path):
    out = tmp_path / "missing-dir" / "report.json"
    with pytest.raises(CommandError) as error:
        call_command("export_report", "--study", study.pk, "--format", "json", "--out", str(out))
    assert error.value.returncode == 2
    assert str(error.value).startswith(UNWRITABLE.format(path=out, error="")[:-1])


def test_a_failed_export_leaves_no_partial_file_and_keeps_the_old_one(study, tmp_path, monkeypatch):
    out = tmp_path / "report.csv"
    out.write_text("previous report")

    def broken(report):
        raise RuntimeError("renderer crashed halfway")

    monkeypatch.setattr(render, "render_csv", broken)
    with pytest.raises(RuntimeError):
        call_command("export_report", "--study", study.pk, "--format", "csv", "--out", str(out))
    assert out.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


def test_the_command_exits_2_as_a_process(tmp_path):
    # format is checked before the database is touched, so a bare process can show the code
    command = [sys.executable, "manage.py", "export_report", "--study", "1", "--format", "xlsx"]
    result = subprocess.run(
        [*command, "--out", str(tmp_path / "r.xlsx")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "evalhub.settings_test"},
    )
    assert result.returncode == 2
    assert UNKNOWN_FORMAT.format(fmt="xlsx") in result.stderr
