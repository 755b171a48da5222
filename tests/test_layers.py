"""The floors of the house (docs/CONTRIBUTING.md, ../shared/DESIGN.md): imports only point
down, command modules never import each other, files and spectra know nothing of torch.
The contracts live in pyproject.toml ([tool.importlinter]); this test runs them."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter")
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert code == 0, "an import breaks a contract: run `lint-imports` to see which"


def test_no_module_imports_a_private_name_of_another_package():
    """``from starlearn.x.y import _name`` across packages hides a missing public API."""
    import re

    offenders = []
    for path in (ROOT / "src" / "starlearn").rglob("*.py"):
        package = path.relative_to(ROOT / "src").parts[:2]
        for line in path.read_text().splitlines():
            match = re.match(r"\s*from (starlearn[\w.]*) import (.*)", line)
            if not match:
                continue
            target = tuple(match.group(1).split(".")[:2])
            names = [n.strip().split(" as ")[0] for n in match.group(2).strip("()").split(",")]
            if target != package and any(n.startswith("_") and not n.startswith("__")
                                         for n in names if n):
                offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
