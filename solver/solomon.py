"""Solomon VRPTW instances: read the text format, turn an instance into a :class:`Problem`, and
turn a :class:`Result` back into routes of customer numbers.

Scaling convention (factor :data:`SCALE` = 1000): travel times are ``ceil(d * 1000)``, distances
``round(d * 1000)``, ready/due times and service times ``* 1000`` (ready and service rounded up,
due rounded down, which is exact for the integer data of the published files). Travel times are
never shorter than the exact Euclidean ones, so a plan the solver finds feasible in its integers
is feasible with exact, unrounded distances too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from solver.model import Problem, Technician, TimeWindow, Visit, Weights
from solver.result import Result

#: Solomon time and distance units per solver unit (seconds / metres).
SCALE = 1000

_CUSTOMER_COLUMNS = 7  # number, x, y, demand, ready, due, service


@dataclass(frozen=True)
class SolomonInstance:
    """A Solomon VRPTW instance. Index 0 of every per-customer tuple is the depot.

    ``ready`` / ``due`` bound the *start* of service; the depot's pair is the planning horizon.
    """

    name: str
    vehicles: int
    capacity: int
    coordinates: tuple[tuple[float, float], ...]
    demand: tuple[int, ...]
    ready: tuple[float, ...]
    due: tuple[float, ...]
    service: tuple[float, ...]

    @property
    def num_customers(self) -> int:
        """How many customers there are (the depot not counted)."""
        return len(self.coordinates) - 1

    def distance(self, i: int, j: int) -> float:
        """The exact (unrounded) Euclidean distance between customers ``i`` and ``j``."""
        (xi, yi), (xj, yj) = self.coordinates[i], self.coordinates[j]
        return math.hypot(xi - xj, yi - yj)

    def distance_matrix(self) -> np.ndarray:
        """All exact Euclidean distances, depot included, as a float matrix."""
        xy = np.asarray(self.coordinates, dtype=float)
        diff = xy[:, None, :] - xy[None, :, :]
        return np.sqrt((diff**2).sum(axis=2))


class SolomonFormatError(ValueError):
    """A Solomon file that cannot be read. ``str()`` is the English sentence naming the file and
    the line; ``message_zh`` says the same in Simplified Chinese."""

    def __init__(self, source: str, line: int | None, message_en: str, message_zh: str) -> None:
        where_en = f"{source}:{line}" if line is not None else source
        where_zh = f"{source} 第 {line} 行" if line is not None else source
        super().__init__(f"{where_en}: {message_en}")
        self.source, self.line = source, line
        self.message_zh = f"{where_zh}：{message_zh}"


def read_solomon(path: str | Path) -> SolomonInstance:
    """Read a Solomon VRPTW text file (name, VEHICLE section, CUSTOMER table; depot first)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SolomonFormatError(
            str(path),
            None,
            f"cannot read the file ({exc.strerror}).",
            f"无法读取文件（{exc.strerror}）。",
        ) from exc
    return parse_solomon(text, source=str(path))


def parse_solomon(text: str, source: str = "<string>") -> SolomonInstance:
    """Parse the text of a Solomon VRPTW instance; ``source`` names it in error messages."""
    numbered = enumerate(text.splitlines(), start=1)
    lines = [(no, line.strip()) for no, line in numbered if line.strip()]
    if not lines:
        raise SolomonFormatError(source, None, "the file is empty.", "文件为空。")
    name = lines[0][1]
    vehicle_at = _find_heading(lines, "VEHICLE", source)
    customer_at = _find_heading(lines, "CUSTOMER", source)
    vehicles, capacity = _read_fleet(lines[vehicle_at + 1 : customer_at], source)
    rows = [(no, line) for no, line in lines[customer_at + 1 :] if line[0].isdigit()]
    return _build_instance(name, vehicles, capacity, rows, source)


def _find_heading(lines: list[tuple[int, str]], heading: str, source: str) -> int:
    for k, (_, line) in enumerate(lines):
        if line.upper() == heading:
            return k
    raise SolomonFormatError(source, None, f"no {heading} section found.", f"缺少 {heading} 部分。")


def _read_fleet(section: list[tuple[int, str]], source: str) -> tuple[int, int]:
    numeric = [(no, line) for no, line in section if line[0].isdigit()]
    if len(numeric) != 1:
        where = section[0][0] if section else None
        raise SolomonFormatError(
            source,
            where,
            "the VEHICLE section needs one line 'NUMBER CAPACITY'.",
            "VEHICLE 部分需要恰好一行“车辆数 容量”。",
        )
    no, line = numeric[0]
    fields = line.split()
    if len(fields) != 2:
        raise SolomonFormatError(
            source,
            no,
            f"expected 'NUMBER CAPACITY', found {len(fields)} fields.",
            f"应为“车辆数 容量”两个字段，实际有 {len(fields)} 个。",
        )
    vehicles = _as_int(fields[0], "NUMBER", source, no)
    capacity = _as_int(fields[1], "CAPACITY", source, no)
    if vehicles < 1:
        raise SolomonFormatError(
            source, no, "field NUMBER must be at least 1.", "车辆数（NUMBER）至少为 1。"
        )
    if capacity < 0:
        raise SolomonFormatError(
            source, no, "field CAPACITY must not be negative.", "容量（CAPACITY）不能为负。"
        )
    return vehicles, capacity


def _build_instance(
    name: str, vehicles: int, capacity: int, rows: list[tuple[int, str]], source: str
) -> SolomonInstance:
    if len(rows) < 2:
        raise SolomonFormatError(
            source,
            None,
            "the CUSTOMER table needs the depot and a customer.",
            "CUSTOMER 表至少需要车场和一个客户。",
        )
    coordinates, demand, ready, due, service = [], [], [], [], []
    for expected, (no, line) in enumerate(rows):
        fields = line.split()
        if len(fields) != _CUSTOMER_COLUMNS:
            raise SolomonFormatError(
                source,
                no,
                f"expected {_CUSTOMER_COLUMNS} fields (CUST NO., XCOORD., YCOORD., DEMAND, "
                f"READY TIME, DUE DATE, SERVICE TIME), found {len(fields)}.",
                f"应有 {_CUSTOMER_COLUMNS} 个字段（编号、X 坐标、Y 坐标、需求、最早时间、最晚时间、"
                f"服务时长），实际有 {len(fields)} 个。",
            )
        number = _as_int(fields[0], "CUST NO.", source, no)
        if number != expected:
            raise SolomonFormatError(
                source,
                no,
                f"customer number {number} out of order; expected {expected}.",
                f"客户编号 {number} 顺序不对，应为 {expected}。",
            )
        x = _as_float(fields[1], "XCOORD.", source, no)
        y = _as_float(fields[2], "YCOORD.", source, no)
        d = _as_int(fields[3], "DEMAND", source, no)
        r = _as_float(fields[4], "READY TIME", source, no)
        u = _as_float(fields[5], "DUE DATE", source, no)
        s = _as_float(fields[6], "SERVICE TIME", source, no)
        _check_row(d, r, u, s, source, no)
        coordinates.append((x, y))
        demand.append(d)
        ready.append(r)
        due.append(u)
        service.append(s)
    return SolomonInstance(
        name=name,
        vehicles=vehicles,
        capacity=capacity,
        coordinates=tuple(coordinates),
        demand=tuple(demand),
        ready=tuple(ready),
        due=tuple(due),
        service=tuple(service),
    )


def _check_row(demand: int, ready: float, due: float, service: float, source: str, no: int) -> None:
    if demand < 0:
        raise SolomonFormatError(
            source, no, "field DEMAND must not be negative.", "需求（DEMAND）不能为负。"
        )
    if ready < 0:
        raise SolomonFormatError(
            source, no, "field READY TIME must not be negative.", "最早时间（READY TIME）不能为负。"
        )
    if due < ready:
        raise SolomonFormatError(
            source,
            no,
            "field DUE DATE is before READY TIME.",
            "最晚时间（DUE DATE）早于最早时间（READY TIME）。",
        )
    if service < 0:
        raise SolomonFormatError(
            source,
            no,
            "field SERVICE TIME must not be negative.",
            "服务时长（SERVICE TIME）不能为负。",
        )


def _as_float(token: str, field_name: str, source: str, no: int) -> float:
    try:
        value = float(token)
    except ValueError:
        raise SolomonFormatError(
            source,
            no,
            f"field {field_name} is {token!r}, not a number.",
            f"字段 {field_name} 的值 {token!r} 不是数字。",
        ) from None
    if not math.isfinite(value):
        raise SolomonFormatError(
            source, no, f"field {field_name} is not finite.", f"字段 {field_name} 不是有限数。"
        )
    return value


def _as_int(token: str, field_name: str, source: str, no: int) -> int:
    value = _as_float(token, field_name, source, no)
    if value != int(value):
        raise SolomonFormatError(
            source,
            no,
            f"field {field_name} is {token!r}, not a whole number.",
            f"字段 {field_name} 的值 {token!r} 不是整数。",
        )
    return int(value)


def technician_id(vehicle: int) -> str:
    """The technician id :func:`solomon_problem` gives vehicle ``vehicle`` (0-based)."""
    return f"vehicle-{vehicle + 1}"


def solomon_problem(instance: SolomonInstance) -> Problem:
    """The instance as a solver problem: one technician per vehicle of the fleet, based at the
    depot within the depot's window, with the fleet's capacity; one visit per customer (id = its
    customer number) with one window [ready, due] and its demand as load; objective distance."""
    exact = instance.distance_matrix()
    durations = np.ceil(exact * SCALE).astype(np.int64)
    distances = np.rint(exact * SCALE).astype(np.int64)
    day_start = math.ceil(instance.ready[0] * SCALE)
    day_end = math.floor(instance.due[0] * SCALE)
    technicians = tuple(
        Technician(
            id=technician_id(k),
            start_location=0,
            end_location=0,
            shift_start=day_start,
            shift_end=day_end,
            capacity=instance.capacity,
        )
        for k in range(instance.vehicles)
    )
    visits = tuple(_visit(instance, c) for c in range(1, instance.num_customers + 1))
    return Problem(
        durations=durations,
        distances=distances,
        technicians=technicians,
        visits=visits,
        weights=Weights(travel_time=0, distance=1),
    )


def _visit(instance: SolomonInstance, customer: int) -> Visit:
    window = TimeWindow(
        math.ceil(instance.ready[customer] * SCALE), math.floor(instance.due[customer] * SCALE)
    )
    return Visit(
        id=str(customer),
        location=customer,
        duration=math.ceil(instance.service[customer] * SCALE),
        windows=(window,),
        load=instance.demand[customer],
    )


def solomon_routes(result: Result, instance: SolomonInstance) -> list[list[int]]:
    """The result's non-empty routes as lists of the instance's customer numbers, in order."""
    routes: list[list[int]] = []
    for route in result.routes:
        customers = [_customer_number(visit, instance) for visit in route.visit_ids]
        if customers:
            routes.append(customers)
    return routes


def _customer_number(visit_id: str, instance: SolomonInstance) -> int:
    if not visit_id.isdigit() or not 1 <= int(visit_id) <= instance.num_customers:
        raise ValueError(
            f"Visit {visit_id!r} is not a customer of Solomon instance {instance.name} "
            f"(1..{instance.num_customers})."
        )
    return int(visit_id)


def routes_as_visit_ids(routes: Sequence[Sequence[int]]) -> dict[str, list[str]]:
    """Customer-number routes as a warm start for :func:`solver.solve` (technician -> visit ids)."""
    return {technician_id(k): [str(c) for c in route] for k, route in enumerate(routes)}
