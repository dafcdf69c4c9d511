"""The engine is plain numpy/scipy: importing any of its modules must not import Django."""

import pathlib
import subprocess
import sys

ENGINE_DIR = pathlib.Path(__file__).resolve().parents[3] / "apps" / "risk" / "engine"
REPO_ROOT = ENGINE_DIR.parents[2]


def engine_modules() -> list[str]:
    return sorted(f"apps.risk.engine.{p.stem}" for p in ENGINE_DIR.glob("*.py") if p.stem != "__init__")


def test_engine_modules_are_found():
    assert "apps.risk.engine.var" in engine_modules()
    assert "apps.risk.engine.types" in engine_modules()


def test_importing_every_engine_module_imports_no_django():
    """Every module under apps/risk/engine imports in a fresh interpreter without pulling in django."""
    modules = ["apps.risk.engine", *engine_modules()]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(','.join(leaked))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"engine imports Django modules: {proc.stdout.strip()}"
