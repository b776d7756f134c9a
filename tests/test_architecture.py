"""The rules of the house that imports can break: trainer is a headless library that never
imports evalhub, the pure cores import no Django, and every URL lives in one module."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_CORES = [
    "trainer/engine",
    "trainer/datasets",
    "evalhub/analysis",
    "evalhub/blinding.py",
    "evalhub/judging",
    "evalhub/chat_client.py",
]
NO_WEB_CODE = ["views", "urls", "forms", "charts", "templatetags", "admin"]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def python_files(relative: str) -> list[Path]:
    path = ROOT / relative
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def offenders(relative: str, top_level: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(relative)
        for module in sorted(imported_modules(path))
        if module == top_level or module.startswith(f"{top_level}.")
    ]


def test_imported_modules_sees_lazy_imports(tmp_path):
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from evalhub.roles import is_manager\n    import torch\n")
    assert imported_modules(source) == {"evalhub.roles", "torch"}


def test_trainer_never_imports_evalhub():
    assert offenders("trainer", "evalhub") == []


@pytest.mark.parametrize("core", PURE_CORES)
def test_pure_cores_import_no_django(core):
    assert offenders(core, "django") == []


def test_trainer_has_no_web_code():
    present = [
        name
        for name in NO_WEB_CODE
        if (ROOT / "trainer" / name).exists() or (ROOT / "trainer" / f"{name}.py").exists()
    ]
    assert present == []
    assert not (ROOT / "templates" / "trainer").exists()


def test_one_url_module():
    url_modules = sorted(
        str(path.relative_to(ROOT))
        for app in ("evalhub", "trainer")
        for path in (ROOT / app).rglob("urls*.py")
    )
    assert url_modules == ["evalhub/urls.py"]
