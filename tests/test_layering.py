"""The layering rule: imports point down only (web -> dispatch -> solver)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "solver": {"flask", "sqlalchemy", "dispatch", "web"},
    "dispatch": {"flask", "web"},
}


def imported_modules(path: Path, package_root: Path) -> Iterator[tuple[int, str]]:
    """Yield (line, absolute module name) for every import in the file at ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, resolve_from(node, module_parts, path.name == "__init__.py")


def resolve_from(node: ast.ImportFrom, module_parts: list[str], is_package: bool) -> str:
    """Return the absolute module an ``import from`` refers to (relative ones resolved)."""
    if node.level == 0:
        return node.module or ""
    # In a package's __init__, "." is the package itself; elsewhere it is the parent package.
    base = module_parts if is_package else module_parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def violations(package: str, forbidden: set[str]) -> list[str]:
    """Return "file:line imports module" for every forbidden import inside ``package``."""
    root = REPO / package
    found = []
    for path in sorted(root.rglob("*.py")):
        for line, module in imported_modules(path, root):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_down_only(package: str) -> None:
    """solver imports no flask/sqlalchemy/dispatch/web; dispatch imports no flask/web."""
    assert violations(package, FORBIDDEN[package]) == []


def test_checker_catches_a_forbidden_relative_import(tmp_path: Path) -> None:
    """A relative import climbing out of solver into dispatch counts as importing dispatch."""
    package = tmp_path / "solver"
    package.mkdir()
    module = package / "bad.py"
    module.write_text("from ..dispatch import models\nimport flask.json\n")
    found = [name for _, name in imported_modules(module, package)]
    assert found == ["dispatch", "flask.json"]
