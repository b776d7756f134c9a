"""A report export that meets a full disk or a read-only data directory, at whichever step: a
clear message naming the path and the reason, exit 2, the previous report untouched and no
temporary file left behind. (tests/evalhub/test_export_report.py covers a missing folder and a
renderer that crashes.)"""

import errno
import os

import pytest
from django.core.management import CommandError, call_command

from evalhub.management.commands import export_report
from tests.factories import JudgmentFactory

pytestmark = pytest.mark.django_db
FAULTS = {
    "disk full while writing": ("write", errno.ENOSPC),
    "disk full while flushing to disk": ("fsync", errno.ENOSPC),
    "read-only file system at the rename": ("replace", errno.EROFS),
    "no permission to create the file": ("mkstemp", errno.EACCES),
}


class _FailingFile:
    """A file whose writes fail half-way, as on a full disk: some bytes land first."""

    def __init__(self, real, code: int):
        self.real, self.code = real, code

    def write(self, data: bytes) -> int:
        self.real.write(data[: len(data) // 2])
        raise OSError(self.code, os.strerror(self.code))

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()


def _break(monkeypatch, step: str, code: int) -> None:
    error = OSError(code, os.strerror(code))

    def fail(*args, **kwargs):
        raise error

    if step == "write":
        real_fdopen = os.fdopen
        monkeypatch.setattr(
            export_report.os, "fdopen", lambda *a, **k: _FailingFile(real_fdopen(*a, **k), code)
        )
    elif step == "mkstemp":
        monkeypatch.setattr(export_report.tempfile, "mkstemp", fail)
    else:
        monkeypatch.setattr(export_report.os, step, fail)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("fmt", ["json", "html"])
def test_an_export_that_cannot_be_written_fails_cleanly(tmp_path, monkeypatch, fault, fmt):
    judgment = JudgmentFactory()
    study = judgment.assignment.comparison.study
    out = tmp_path / f"report.{fmt}"
    out.write_text("the previous report")
    step, code = FAULTS[fault]
    _break(monkeypatch, step, code)
    with pytest.raises(CommandError) as caught:
        call_command("export_report", study=study.pk, fmt=fmt, out=out)
    monkeypatch.undo()
    assert caught.value.returncode == 2
    assert str(caught.value) == export_report.UNWRITABLE.format(
        path=out.resolve(), error=os.strerror(code)
    )
    assert out.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left
