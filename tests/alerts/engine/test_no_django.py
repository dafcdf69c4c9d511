"""The surveillance engine is plain numpy/pandas: importing any of its modules must not import Django."""

import pathlib
import subprocess
import sys

ENGINE_DIR = pathlib.Path(__file__).resolve().parents[3] / "apps" / "alerts" / "engine"
REPO_ROOT = ENGINE_DIR.parents[2]


def engine_modules() -> list[str]:
    return sorted(f"apps.alerts.engine.{p.stem}" for p in ENGINE_DIR.glob("*.py") if p.stem != "__init__")


def test_engine_modules_are_found():
    assert {"apps.alerts.engine.surveillance", "apps.alerts.engine.detector"} <= set(engine_modules())


def test_importing_every_engine_module_imports_no_django_and_no_scikit_learn_until_used():
    """Every module under apps/alerts/engine imports without django; scikit-learn waits until a detector is fitted."""
    modules = ["apps.alerts.engine", *engine_modules()]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "watched = ('django', 'sklearn')\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in watched)\n"
        "print(','.join(leaked))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"engine imports: {proc.stdout.strip()}"
