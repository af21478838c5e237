"""One exception root: every error class Conveyor defines derives from ConveyorError.

Read from the source (no imports: the Airflow modules are slow to import), so a new
``class FooError(ValueError)`` anywhere in src/ fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conveyor.errors import BadInputError
from conveyor.runners.gc import plan_gc
from conveyor.store import Store

SRC = Path(__file__).resolve().parents[2] / "src" / "conveyor"


def _error_classes() -> dict[str, tuple[str, list[str]]]:
    """Public exception-like classes in src/: name -> (file, base names)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.bases and not node.name.startswith("_") and (
                    node.name.endswith(("Error", "Exception"))):
                bases = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
                found[node.name] = (str(path.relative_to(SRC)), bases)
    return found


def test_every_conveyor_error_derives_from_the_one_root() -> None:
    classes = _error_classes()
    assert {"ConveyorImportError", "SpecError", "ConfigError"} <= classes.keys()

    def rooted(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == "ConveyorError":
            return True
        if name not in classes or name in seen:
            return False
        return any(rooted(base, seen | {name}) for base in classes[name][1])

    outside = sorted(f"{file}: {name}{tuple(classes[name][1])}"
                     for name, (file, _) in classes.items() if not rooted(name))
    assert outside == []


def test_gc_refuses_keep_zero_as_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="keep must be at least 1"):
        plan_gc(Store(tmp_path.as_uri()), "p", keep=0)
