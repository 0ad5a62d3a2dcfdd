"""Where the Solomon instances live, their best-known solutions and the 12-instance subset."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

#: The folder with ``C101.txt``, ``C101.sol``, ..., ``bks.csv``; ``SOLOMON_DIR`` overrides it.
DEFAULT_SOLOMON_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "solomon"

#: The subset measured in the playbook: two of each family, plus a few hard ones.
SUBSET = (
    "C101", "C201", "R101", "R105", "R109", "R201", "R205",
    "RC101", "RC105", "RC201", "RC205", "RC208",
)  # fmt: skip

#: Families in the order tables list them (longest prefix first when matching).
FAMILIES = ("C1", "C2", "R1", "R2", "RC1", "RC2")


@dataclass(frozen=True)
class BestKnown:
    """A best-known solution re-scored with exact distances (one row of ``bks.csv``)."""

    instance: str
    routes: int
    exact_distance: float
    feasible_exact: bool


def solomon_dir() -> Path:
    """The folder holding the Solomon files (``SOLOMON_DIR`` or the shared default)."""
    return Path(os.environ.get("SOLOMON_DIR", DEFAULT_SOLOMON_DIR))


def instance_path(name: str) -> Path:
    """Path of an instance's text file, e.g. ``C101`` -> ``.../C101.txt``."""
    return solomon_dir() / f"{name.upper()}.txt"


def all_instance_names() -> list[str]:
    """Every instance with a text file, sorted by family then number."""
    names = [p.stem for p in solomon_dir().glob("*.txt")]
    return sorted(names, key=lambda n: (family_of(n), n))


def family_of(name: str) -> str:
    """The family of an instance: ``RC105`` -> ``RC1``, ``C201`` -> ``C2``."""
    letters = name.rstrip("0123456789")
    digits = name[len(letters) :]
    if letters.upper() not in ("C", "R", "RC") or len(digits) != 3:
        raise ValueError(f"Instance name {name!r} is not a Solomon name (C1xx, R2xx, RC1xx ...).")
    return letters.upper() + digits[0]


def read_best_known() -> dict[str, BestKnown]:
    """``bks.csv`` keyed by instance name."""
    path = solomon_dir() / "bks.csv"
    table: dict[str, BestKnown] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                table[row["instance"]] = BestKnown(
                    instance=row["instance"],
                    routes=int(row["routes"]),
                    exact_distance=float(row["exact_distance"]),
                    feasible_exact=row["feasible_exact"].strip() == "True",
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{line_no}: unreadable row ({exc}).") from exc
    return table


def read_solution(path: str | Path) -> list[list[int]]:
    """Routes of a ``.sol`` file (``Route #k: c1 c2 ...`` lines) as customer-number lists."""
    path = Path(path)
    routes: list[list[int]] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        head, sep, body = line.partition(":")
        if not sep or not head.strip().lower().startswith("route"):
            continue
        try:
            routes.append([int(token) for token in body.split()])
        except ValueError as exc:
            raise ValueError(f"{path}:{line_no}: a route holds a non-integer ({exc}).") from exc
    return routes
