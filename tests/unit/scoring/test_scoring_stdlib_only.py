"""scoring/ stays pure: standard library and numpy only, and no clock, randomness or I/O.

numpy is computation (the columnar model scores creators in bulk with it); the
stream and storage libraries (faust, aiokafka, redis, orjson) never enter scoring/.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SCORING = Path(__file__).resolve().parents[3] / "scoring"
SOURCES = sorted(SCORING.rglob("*.py"))
#: Third-party packages scoring/ may import: numerical computation only.
ALLOWED_THIRD_PARTY = {"numpy"}
# Wall clocks, randomness and I/O channels a pure model has no business with.
BANNED_MODULES = {
    "time",
    "random",
    "secrets",
    "uuid",
    "socket",
    "threading",
    "asyncio",
    "subprocess",
}
BANNED_CALLS = {"now", "utcnow", "today", "monotonic", "perf_counter"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_there_are_sources_to_check() -> None:
    names = {p.name for p in SOURCES}
    assert {"params.py", "events.py", "validate.py", "state.py", "model.py", "changes.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_only_standard_library_and_numpy_imports(path: Path) -> None:
    bad = [
        f"{path.name}:{line} imports {name}"
        for line, name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] not in {"scoring", *ALLOWED_THIRD_PARTY}
    ]
    assert not bad, bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_clock_or_randomness(path: Path) -> None:
    bad = [f"{path.name}:{line} imports {n}" for line, n in _imports(path)
           if n.split(".")[0] in BANNED_MODULES]  # fmt: skip
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad += [
        f"{path.name}:{node.lineno} calls .{node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in BANNED_CALLS
    ]
    assert not bad, bad


def test_importing_scoring_loads_no_stream_or_storage_library() -> None:
    modules = ", ".join(f"scoring.{p.stem}" for p in SOURCES if p.stem != "__init__")
    code = (
        "import sys; before = set(sys.modules)\n"
        f"import {modules}\n"
        "new = sorted({m.split('.')[0] for m in set(sys.modules) - before} - {'scoring', 'numpy'}"
        " - set(sys.stdlib_module_names))\n"
        "print(','.join(new))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
