"""The JSON problem and result format (documented in ``solver/schemas/*.schema.json``).

Ids are the caller's; times are seconds from the plan's start; the travel matrices are given
inline. Reading validates every field and raises :class:`JsonFormatError` (a ``ValueError``)
whose message names the field's path, e.g. ``visits[3].windows[0].end``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from solver.model import Break, Problem, Technician, TimeWindow, Visit, Weights
from solver.params import SolveParams
from solver.result import Result

SCHEMA_DIR = Path(__file__).with_name("schemas")
_TOP_LEVEL = {"durations", "distances", "weights", "technicians", "visits", "initial_routes",
              "params"}
_TECH_FIELDS = {"id", "start_location", "end_location", "shift_start", "shift_end", "skills",
                "max_overtime", "overtime_cost", "breaks", "max_visits", "duration_factor",
                "fixed_cost", "capacity"}
_VISIT_FIELDS = {"id", "location", "duration", "windows", "skills", "priority", "due",
                 "lateness_cost", "pinned_technician", "pinned_start", "locked", "required",
                 "load"}
_PARAM_FIELDS = {f.name for f in fields(SolveParams)}


class JsonFormatError(ValueError):
    """A JSON problem that does not follow the format; ``path`` names the field."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def problem_from_json(
    data: Mapping[str, Any],
) -> tuple[Problem, dict[str, list[str]] | None, dict[str, Any] | None]:
    """Read a JSON problem: the problem, its initial routes (or None) and the solve-parameter
    overrides it carries (or None)."""
    _expect(isinstance(data, Mapping), "$", "must be an object")
    _no_unknown(data, _TOP_LEVEL, "$")
    durations = _matrix(data.get("durations"), "durations")
    distances = (_matrix(data["distances"], "distances") if data.get("distances") is not None
                 else durations)
    n = len(durations)
    _expect(len(distances) == n, "distances", f"must be {n} x {n} like durations")
    technicians = [_technician(t, f"technicians[{k}]", n)
                   for k, t in enumerate(_list(data.get("technicians"), "technicians"))]
    visits = [_visit(v, f"visits[{k}]", n)
              for k, v in enumerate(_list(data.get("visits"), "visits"))]
    _unique([t.id for t in technicians], "technicians")
    _unique([v.id for v in visits], "visits")
    tech_ids = {t.id for t in technicians}
    for k, v in enumerate(visits):
        if v.pinned_technician is not None:
            _expect(v.pinned_technician in tech_ids, f"visits[{k}].pinned_technician",
                    f"names {v.pinned_technician!r}, who is not among the technicians")
    weights = _weights(data.get("weights"))
    try:
        problem = Problem(durations, distances, tuple(technicians), tuple(visits), weights)
    except ValueError as exc:
        raise JsonFormatError("$", str(exc)) from exc
    routes = _initial_routes(data.get("initial_routes"), tech_ids, {v.id for v in visits})
    return problem, routes, _params(data.get("params"))


def params_with(base: SolveParams, overrides: Mapping[str, Any] | None) -> SolveParams:
    """``base`` with the JSON's parameter overrides applied (validated)."""
    if not overrides:
        return base
    values = {**asdict(base), **overrides}
    try:
        return SolveParams(**values)
    except (TypeError, ValueError) as exc:
        raise JsonFormatError("params", str(exc)) from exc


def result_to_json(result: Result) -> dict[str, Any]:
    """The result as a JSON-ready dict (see ``result.schema.json``)."""
    return {
        "routes": [
            {
                "technician": r.technician,
                "start_time": r.start_time,
                "end_time": r.end_time,
                "travel_time": r.travel_time,
                "distance": r.distance,
                "overtime": r.overtime,
                "return_travel_time": r.return_travel_time,
                "return_distance": r.return_distance,
                "stops": [asdict(s) for s in r.stops],
                "breaks": [asdict(b) for b in r.breaks],
            }
            for r in result.routes
        ],
        "unassigned": [
            {"visit": u.visit, "code": u.code, "message_en": u.message_en,
             "message_zh": u.message_zh, "params": json_ready(u.params)}
            for u in result.unassigned
        ],
        "kpis": asdict(result.kpis),
        "objective": {k: int(v) for k, v in result.objective.items()},
        "stats": json_ready(result.stats),
    }


def problem_to_json(problem: Problem,
                    initial_routes: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """The problem as a JSON-ready dict that :func:`problem_from_json` reads back."""
    data: dict[str, Any] = {
        "durations": problem.durations.tolist(),
        "distances": problem.distances.tolist(),
        "weights": asdict(problem.weights),
        "technicians": [_technician_json(t) for t in problem.technicians],
        "visits": [_visit_json(v) for v in problem.visits],
    }
    if initial_routes is not None:
        data["initial_routes"] = {k: list(v) for k, v in initial_routes.items()}
    return data


# --------------------------------------------------------------------------------- reading
def _expect(condition: bool, path: str, problem: str) -> None:
    if not condition:
        raise JsonFormatError(path, problem)


def _no_unknown(obj: Mapping[str, Any], known: set[str], path: str) -> None:
    unknown = sorted(set(obj) - known)
    _expect(not unknown, f"{path}.{unknown[0]}" if unknown else path,
            "is not a field of the format")


def _list(value: Any, path: str) -> list[Any]:
    _expect(isinstance(value, list), path, "must be a list")
    return value


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    _expect(isinstance(value, Mapping), path, "must be an object")
    return value


def _int(obj: Mapping[str, Any], key: str, path: str, default: Any = ..., minimum: int = 0,
         nullable: bool = False) -> Any:
    if key not in obj or (obj[key] is None and nullable):
        _expect(default is not ..., f"{path}.{key}", "is required")
        return default
    value = obj[key]
    _expect(isinstance(value, int) and not isinstance(value, bool), f"{path}.{key}",
            f"must be an integer, not {value!r}")
    _expect(value >= minimum, f"{path}.{key}", f"must be at least {minimum}")
    return value


def _str(obj: Mapping[str, Any], key: str, path: str, nullable: bool = False) -> Any:
    value = obj.get(key)
    if value is None and nullable:
        return None
    _expect(isinstance(value, str) and value != "", f"{path}.{key}",
            "must be a non-empty string")
    return value


def _bool(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key, False)
    _expect(isinstance(value, bool), f"{path}.{key}", "must be true or false")
    return value


def _matrix(value: Any, path: str) -> list[list[int]]:
    rows = _list(value, path)
    _expect(len(rows) > 0, path, "must not be empty")
    for i, row in enumerate(rows):
        _expect(isinstance(row, list) and len(row) == len(rows), f"{path}[{i}]",
                f"must be a list of {len(rows)} numbers (the matrix is square)")
        for j, x in enumerate(row):
            _expect(isinstance(x, int) and not isinstance(x, bool) and x >= 0,
                    f"{path}[{i}][{j}]", f"must be a non-negative integer, not {x!r}")
    return rows


def _location(obj: Mapping[str, Any], key: str, path: str, n: int) -> int:
    value = _int(obj, key, path)
    _expect(value < n, f"{path}.{key}", f"is {value}, outside the matrices (0..{n - 1})")
    return value


def _skills(value: Any, path: str) -> dict[str, int]:
    if value is None:
        return {}
    skills = _obj(value, path)
    for code in skills:
        _int(skills, code, path, minimum=1)
    return dict(skills)


def _window(value: Any, path: str) -> TimeWindow:
    w = _obj(value, path)
    _no_unknown(w, {"start", "end"}, path)
    start, end = _int(w, "start", path), _int(w, "end", path)
    _expect(end >= start, f"{path}.end", f"({end}) is before start ({start})")
    return TimeWindow(start, end)


def _technician(value: Any, path: str, n: int) -> Technician:
    t = _obj(value, path)
    _no_unknown(t, _TECH_FIELDS, path)
    factor = t.get("duration_factor", 1.0)
    _expect(isinstance(factor, (int, float)) and not isinstance(factor, bool) and factor > 0,
            f"{path}.duration_factor", "must be a positive number")
    breaks = []
    for j, b in enumerate(_list(t.get("breaks", []), f"{path}.breaks")):
        bp = f"{path}.breaks[{j}]"
        b = _obj(b, bp)
        _no_unknown(b, {"earliest", "latest", "duration"}, bp)
        breaks.append(Break(_int(b, "earliest", bp), _int(b, "latest", bp),
                            _int(b, "duration", bp, minimum=1)))
    return Technician(
        id=_str(t, "id", path),
        start_location=_location(t, "start_location", path, n),
        end_location=_location(t, "end_location", path, n),
        shift_start=_int(t, "shift_start", path),
        shift_end=_int(t, "shift_end", path),
        skills=_skills(t.get("skills"), f"{path}.skills"),
        max_overtime=_int(t, "max_overtime", path, 0),
        overtime_cost=_int(t, "overtime_cost", path, 2),
        breaks=tuple(breaks),
        max_visits=_int(t, "max_visits", path, None, nullable=True),
        duration_factor=float(factor),
        fixed_cost=_int(t, "fixed_cost", path, 0),
        capacity=_int(t, "capacity", path, None, nullable=True),
    )


def _visit(value: Any, path: str, n: int) -> Visit:
    v = _obj(value, path)
    _no_unknown(v, _VISIT_FIELDS, path)
    wins = tuple(_window(w, f"{path}.windows[{j}]")
                 for j, w in enumerate(_list(v.get("windows", []), f"{path}.windows")))
    pinned = v.get("pinned_start")
    return Visit(
        id=_str(v, "id", path),
        location=_location(v, "location", path, n),
        duration=_int(v, "duration", path),
        windows=wins,
        skills=_skills(v.get("skills"), f"{path}.skills"),
        priority=_int(v, "priority", path, 1, minimum=1),
        due=_int(v, "due", path, None, nullable=True),
        lateness_cost=_int(v, "lateness_cost", path, 1),
        pinned_technician=_str(v, "pinned_technician", path, nullable=True),
        pinned_start=None if pinned is None else _window(pinned, f"{path}.pinned_start"),
        locked=_bool(v, "locked", path),
        required=_bool(v, "required", path),
        load=_int(v, "load", path, 0),
    )


def _weights(value: Any) -> Weights:
    if value is None:
        return Weights()
    w = _obj(value, "weights")
    _no_unknown(w, {"travel_time", "distance", "waiting", "balance"}, "weights")
    default = Weights()
    return Weights(**{name: _int(w, name, "weights", getattr(default, name))
                      for name in ("travel_time", "distance", "waiting", "balance")})


def _unique(ids: Sequence[str], path: str) -> None:
    seen: set[str] = set()
    for k, item in enumerate(ids):
        _expect(item not in seen, f"{path}[{k}].id", f"{item!r} appears twice")
        seen.add(item)


def _initial_routes(value: Any, tech_ids: set[str],
                    visit_ids: set[str]) -> dict[str, list[str]] | None:
    if value is None:
        return None
    routes = _obj(value, "initial_routes")
    out: dict[str, list[str]] = {}
    for tech, visits in routes.items():
        _expect(tech in tech_ids, f"initial_routes.{tech}", "is not a technician's id")
        for j, visit in enumerate(_list(visits, f"initial_routes.{tech}")):
            _expect(visit in visit_ids, f"initial_routes.{tech}[{j}]",
                    f"{visit!r} is not a visit's id")
        out[tech] = list(visits)
    return out


def _params(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    params = _obj(value, "params")
    _no_unknown(params, _PARAM_FIELDS, "params")
    return dict(params)


# --------------------------------------------------------------------------------- writing
def _technician_json(t: Technician) -> dict[str, Any]:
    data = asdict(t)
    data["skills"] = dict(t.skills)
    data["breaks"] = [asdict(b) for b in t.breaks]
    return data


def _visit_json(v: Visit) -> dict[str, Any]:
    data = asdict(v)
    data["skills"] = dict(v.skills)
    data["windows"] = [asdict(w) for w in v.windows]
    data["pinned_start"] = None if v.pinned_start is None else asdict(v.pinned_start)
    return data


def json_ready(value: Any) -> Any:
    """Mappings and sequences turned into JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
