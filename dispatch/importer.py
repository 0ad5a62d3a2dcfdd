"""Importing customers, technicians and visits from CSV files, and a whole day from JSON.

Both paths turn their input into a ``fixtures.Dataset`` and hand it to the loader's upsert
(``dispatch.loader.load_dataset``), so there is one writer of these records. Import is all or
nothing: every row of every file is checked first, against the other files and the database,
every problem is collected as (file, row, field, message in Chinese and English), and one
``DataImportError`` lists them all; only a clean input reaches the loader. The columns are
documented in docs/import.md.

Row numbers count the header as row 1, as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import fixtures
from dispatch import models as m
from dispatch.errors import ValidationError
from dispatch.geocoding import Geocoder, GeocodingError
from dispatch.timeutil import zone as zone_named

# A CSV input: a path, or (display name, raw bytes) for an upload.
CsvInput = str | os.PathLike[str] | tuple[str, bytes]
Row = int | str

DEFAULT_SLA = timedelta(hours=24)  # the domain's promise: a response within 24 hours
DEFAULT_LUNCH = (time(11, 30), time(13, 30))
DEFAULT_LUNCH_MINUTES = 45
LIVE_VISIT_STATUSES = frozenset(
    {m.VisitStatus.EN_ROUTE, m.VisitStatus.ON_SITE, m.VisitStatus.DONE,
     m.VisitStatus.NOT_FINISHED, m.VisitStatus.NO_SHOW}
)
AGREED_STATUSES = frozenset({m.ConfirmationStatus.CONFIRMED, m.ConfirmationStatus.RECONFIRMED})
TRUE_WORDS = frozenset({"true", "yes", "y", "1", "是", "真"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "否", "假"})

# The columns of each file: name -> required. The order is the documented order.
CUSTOMER_COLUMNS: dict[str, bool] = {
    "customer_code": True, "name": True, "honorific": False, "phone": True, "phone_alt": False,
    "address": True, "district": False, "lat": False, "lon": False, "language": False,
    "calling_hours": False, "notes": False,
}
TECHNICIAN_COLUMNS: dict[str, bool] = {
    "technician_code": True, "outlet_code": True, "name": True, "phone": False,
    "home_address": False, "home_lat": False, "home_lon": False, "skills": True,
    "languages": False, "active": False, "duration_factor": False, "max_visits": False,
    "shift_date": False, "shift_hours": False, "lunch_window": False, "lunch_minutes": False,
    "start_place": False, "end_place": False, "absent": False, "absence_reason": False,
}
VISIT_COLUMNS: dict[str, bool] = {
    "visit_code": True, "ticket_code": False, "outlet_code": True, "customer_code": True,
    "day": True, "duration_minutes": True, "required_skills": False, "windows": False,
    "agreed_window": False, "confirmation_status": False, "priority": False,
    "pinned_technician_code": False, "pinned_start": False,
    "kind": True, "symptom": False, "reported_at": False, "channel": False, "owner": False,
    "sla_deadline": False,
    "product_serial": False, "product_category": False, "product_brand": False,
    "product_model": False, "invoice_date": False, "warranty_months": False,
    "main_parts_warranty_months": False,
}

# Record field -> CSV column, where they differ, so dataset-level errors name the CSV column.
CSV_FIELD_NAMES: dict[str, dict[str, str]] = {
    "customer": {"code": "customer_code", "calling_start": "calling_hours",
                 "calling_end": "calling_hours"},
    "technician": {"code": "technician_code"},
    "shift": {"day": "shift_date", "starts_at": "shift_hours", "ends_at": "shift_hours",
              "lunch_window_start": "lunch_window", "lunch_window_end": "lunch_window"},
    "product": {"serial": "product_serial", "category": "product_category",
                "brand": "product_brand", "model": "product_model"},
    "ticket": {"code": "ticket_code", "priority": "priority"},
    "visit": {"code": "visit_code", "agreed_start": "agreed_window",
              "agreed_end": "agreed_window", "pinned_start_from": "pinned_start",
              "pinned_start_to": "pinned_start"},
}


# ---------------------------------------------------------------------------------------------
# Errors and the report
# ---------------------------------------------------------------------------------------------


class DataImportError(ValidationError):
    """An import was refused; ``errors`` lists every problem found, each naming file/row/field."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        count = len(self.errors)
        super().__init__(
            f"import refused, nothing was written; {count} problem(s): "
            + "; ".join(e.message_en for e in self.errors),
            f"导入被拒绝，未写入任何数据；共 {count} 个问题：" + "；".join(e.message_zh for e in self.errors),
        )
        # Point at the first problem, so a caller showing one location shows a real one.
        self.field, self.row, self.file = first.field, first.row, first.file

    def bilingual(self) -> str:
        """Return a heading and one line per problem, each in Chinese and English."""
        heading = (f"导入被拒绝，未写入任何数据；共 {len(self.errors)} 个问题 / "
                   f"Import refused, nothing was written; {len(self.errors)} problem(s):")
        return "\n".join([heading, *(f"  - {e.bilingual()}" for e in self.errors)])


# The brief's name for it. Inside this module always write DataImportError: the alias hides the
# built-in ImportError here, and an ``except ImportError`` would then catch the wrong thing.
ImportError = DataImportError  # noqa: A001


@dataclass(frozen=True)
class ImportReport:
    """What an import read and wrote: rows per file, addresses geocoded, the loader's counts."""

    rows: dict[str, int]  # file -> rows (CSV) or records (JSON) read
    geocoded: int
    loaded: Any  # dispatch.loader.LoadReport

    def lines(self) -> list[str]:
        """Return a short bilingual summary, one line per fact."""
        out = [f"读取 {name}：{n} 条 / Read {name}: {n} record(s)" for name, n in self.rows.items()]
        if self.geocoded:
            out.append(f"地理编码 {self.geocoded} 个地址 / Geocoded {self.geocoded} address(es)")
        out.extend(self.loaded.summary().splitlines())
        return out


class _Problems:
    """Collects every problem of an import before anything is written."""

    def __init__(self) -> None:
        self.items: list[ValidationError] = []
        self.files: list[str] = []  # the order to list files in; others follow as met
        self._seen: set[tuple[Any, ...]] = set()

    def add(self, file: str, row: Row | None, field_name: str | None, en: str, zh: str) -> None:
        # A bad reference may be found by more than one check: say it once.
        key = (file, row, field_name, en)
        if key not in self._seen:
            self._seen.add(key)
            self.items.append(ValidationError(en, zh, field=field_name, row=row, file=file))

    def raise_if_any(self) -> None:
        if self.items:
            raise DataImportError(sorted(self.items, key=self._order()))

    def _order(self) -> Callable[[ValidationError], tuple[int, int, str]]:
        """Files in the order met, then rows in file order (a spreadsheet's or a list's)."""
        met = [*self.files, *(e.file for e in self.items)]
        files = {name: i for i, name in reversed(list(enumerate(met)))}

        def key(error: ValidationError) -> tuple[int, int, str]:
            row = error.row
            number = row if isinstance(row, int) else -1 if row is None else _list_index(row)
            return files[error.file], number, str(row)

        return key


def _list_index(row: str) -> int:
    found = re.search(r"\[(\d+)\]", row)
    return int(found.group(1)) if found else 0


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


def import_csv(
    session: Session,
    customers: CsvInput | None = None,
    technicians: CsvInput | None = None,
    visits: CsvInput | None = None,
    geocoder: Geocoder | None = None,
    *,
    now: datetime | None = None,
) -> ImportReport:
    """Import customers, technicians and visits from CSV files, all or nothing.

    ``now`` (default: the current instant) is the report time of visits that give none. Raises
    ``DataImportError`` listing every problem; on success the records are flushed, not committed.
    """
    problems = _Problems()
    tables = {kind: _read_csv(source, columns, kind, problems)
              for kind, source, columns in (("customers", customers, CUSTOMER_COLUMNS),
                                            ("technicians", technicians, TECHNICIAN_COLUMNS),
                                            ("visits", visits, VISIT_COLUMNS))
              if source is not None}
    if not tables:
        raise ValidationError("give at least one CSV file to import", "请至少提供一个要导入的 CSV 文件",
                              field="customers/technicians/visits")
    problems.files = [table.file for table in tables.values()]
    problems.raise_if_any()  # a file that cannot be read as a table has no rows worth checking
    db = _DbState.load(session, _csv_codes(tables))
    builder = _CsvBuilder(db, problems, geocoder, now or datetime.now(UTC))
    parsed = builder.build(tables)
    _check_dataset(parsed, db, problems, protect_live=True)
    problems.raise_if_any()
    loaded = _load(session, parsed.dataset)
    return ImportReport({t.file: len(t.rows) for t in tables.values()}, builder.geocoded, loaded)


def import_day_json(session: Session, data: Mapping[str, Any], *, source: str = "day.json"
                    ) -> ImportReport:
    """Import the JSON form of a day (``fixtures.export_json``), all or nothing.

    ``source`` names the file in messages. Raises ``DataImportError`` listing every problem.
    """
    problems = _Problems()
    try:
        dataset = fixtures.import_json(dict(data) if isinstance(data, Mapping) else data)
    except fixtures.FixtureFormatError as exc:
        row, field_name, text = _split_fixture_error(str(exc))
        problems.add(source, row, field_name, text, f"JSON 格式错误：{text}")
        problems.raise_if_any()
        raise  # unreachable: raise_if_any raised
    parsed = _index_dataset(dataset, source, problems)
    db = _DbState.load(session, _dataset_codes(dataset))
    _check_dataset(parsed, db, problems, protect_live=False)
    problems.raise_if_any()
    records = sum(len(getattr(dataset, name)) for name in (
        "skills", "outlets", "technicians", "shifts", "customers", "products", "tickets",
        "visits", "users"))
    return ImportReport({source: records}, 0, _load(session, dataset))


def export_day(session: Session, day: date, outlet_codes: Sequence[str] | None = None
               ) -> dict[str, Any]:
    """Return the JSON form of ``day`` (optionally of some outlets only) for import_day_json."""
    from dispatch.loader import dataset_from_db  # the loader is another module's; import on use

    return fixtures.export_json(dataset_from_db(session, day, outlet_codes))


def _load(session: Session, dataset: fixtures.Dataset) -> Any:
    from dispatch.loader import load_dataset

    return load_dataset(session, dataset)


# ---------------------------------------------------------------------------------------------
# Reading CSV files
# ---------------------------------------------------------------------------------------------


@dataclass
class _Table:
    """The rows of one CSV file, each with its spreadsheet row number."""

    file: str
    rows: list[tuple[int, dict[str, str]]]


def _read_csv(source: CsvInput, columns: Mapping[str, bool], kind: str,
              problems: _Problems) -> _Table:
    name, raw = _source_bytes(source, kind, problems)
    table = _Table(name, [])
    if raw is None:
        return table
    try:
        text = raw.decode("utf-8-sig")  # "-sig": spreadsheets on Windows write a BOM
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.add(name, line, None, "the file is not UTF-8 text (save it as CSV UTF-8)",
                     "文件不是 UTF-8 编码（请另存为 CSV UTF-8 格式）")
        return table
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        records = list(reader)
    except csv.Error as exc:
        problems.add(name, reader.line_num, None, f"malformed CSV: {exc}", f"CSV 格式错误：{exc}")
        return table
    if not records or not any(cell.strip() for cell in records[0]):
        problems.add(name, 1, None, "the file is empty: the first row must name the columns",
                     "文件为空：第一行应为列名")
        return table
    header = [cell.strip().lower() for cell in records[0]]
    if not _header_ok(header, columns, name, problems):
        return table
    for number, cells in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # blank lines carry nothing
        if len(cells) != len(header):
            problems.add(name, number, None,
                         f"expected {len(header)} values, found {len(cells)}",
                         f"应有 {len(header)} 个值，实际 {len(cells)} 个")
            continue
        table.rows.append((number, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
    return table


def _source_bytes(source: CsvInput, kind: str, problems: _Problems) -> tuple[str, bytes | None]:
    if isinstance(source, tuple):
        return source[0], source[1]
    path = Path(source)
    try:
        return path.name, path.read_bytes()
    except OSError as exc:
        problems.add(path.name, None, None, f"cannot read the {kind} file: {exc.strerror}",
                     f"无法读取文件：{exc.strerror}")
        return path.name, None


def _header_ok(header: list[str], columns: Mapping[str, bool], name: str,
               problems: _Problems) -> bool:
    before = len(problems.items)
    for column in sorted({h for h in header if header.count(h) > 1}):
        problems.add(name, 1, column, "the column appears twice", "该列重复出现")
    for column in header:
        if column not in columns:
            problems.add(name, 1, column or "(empty)",
                         f"unknown column; the columns are: {', '.join(columns)}",
                         f"未知的列；可用的列为：{', '.join(columns)}")
    for column, required in columns.items():
        if required and column not in header:
            problems.add(name, 1, column, "this required column is missing", "缺少必需的列")
    return len(problems.items) == before


# ---------------------------------------------------------------------------------------------
# What the database already holds, looked up once
# ---------------------------------------------------------------------------------------------


@dataclass
class _DbVisit:
    ticket_code: str
    outlet_code: str
    status: m.VisitStatus
    confirmation: m.ConfirmationStatus
    agreed: tuple[datetime | None, datetime | None]


@dataclass
class _DbState:
    """The rows an import refers to or would change, keyed by code."""

    skills: set[str] = field(default_factory=set)
    outlet_zones: dict[str, str] = field(default_factory=dict)
    technician_outlets: dict[str, str] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)
    products: dict[str, str] = field(default_factory=dict)  # serial -> customer code
    repairs: dict[str, tuple[fixtures.Repair, ...]] = field(default_factory=dict)
    # code -> (customer code, outlet code, status, escalation level, reported at, SLA deadline)
    tickets: dict[str, tuple[str, str, str, int, datetime, datetime | None]] = field(
        default_factory=dict)
    visits: dict[str, _DbVisit] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, session: Session, codes: Mapping[str, set[str]]) -> _DbState:
        """Look up every code in ``codes`` (kind -> codes) in the database."""
        state = cls()
        state.skills = set(_in(session, select(m.Skill.code), m.Skill.code, codes["skill"]))
        state.outlet_zones = dict(_in(session, select(m.Outlet.code, m.Outlet.timezone),
                                      m.Outlet.code, codes["outlet"]))
        state.technician_outlets = dict(_in(
            session, select(m.Technician.code, m.Outlet.code).join(m.Technician.outlet),
            m.Technician.code, codes["technician"]))
        state.customers = set(_in(session, select(m.Customer.code), m.Customer.code,
                                  codes["customer"]))
        state.products = dict(_in(
            session, select(m.CustomerProduct.serial, m.Customer.code)
            .join(m.CustomerProduct.customer), m.CustomerProduct.serial, codes["product"]))
        state.repairs = _repairs(session, state.products)
        state.tickets = {code: (customer, outlet, str(status), *rest) for code, customer, outlet,
                         status, *rest in _in(
            session, select(m.ServiceTicket.code, m.Customer.code, m.Outlet.code,
                            m.ServiceTicket.status, m.ServiceTicket.escalation_level,
                            m.ServiceTicket.reported_at, m.ServiceTicket.sla_deadline)
            .join(m.ServiceTicket.customer).join(m.ServiceTicket.outlet),
            m.ServiceTicket.code, codes["ticket"])}
        state.visits = {row[0]: _DbVisit(*row[1:5], agreed=(row[5], row[6])) for row in _in(
            session, select(m.Visit.code, m.ServiceTicket.code, m.Outlet.code, m.Visit.status,
                            m.Visit.confirmation_status, m.Visit.agreed_start, m.Visit.agreed_end)
            .join(m.Visit.ticket).join(m.Visit.outlet), m.Visit.code, codes["visit"])}
        state.users = set(_in(session, select(m.User.username), m.User.username, codes["user"]))
        return state


def _in(session: Session, query: Any, column: Any, values: set[str]) -> list[Any]:
    """Run ``query`` restricted to ``column IN values``, in chunks a database accepts."""
    found: list[Any] = []
    ordered = sorted(values)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start:start + 500]
        rows = session.execute(query.where(column.in_(chunk))).all()
        found.extend(row[0] if len(row) == 1 else tuple(row) for row in rows)
    return found


def _repairs(session: Session, products: Mapping[str, str]
             ) -> dict[str, tuple[fixtures.Repair, ...]]:
    # An updated product is written whole: carry its repair history so none of it is lost.
    history: dict[str, list[fixtures.Repair]] = {serial: [] for serial in products}
    if not products:
        return {}
    query = (select(m.CustomerProduct.serial, m.ProductRepair.repaired_on,
                    m.ProductRepair.description, m.ProductRepair.fixed)
             .join(m.ProductRepair.product).order_by(m.ProductRepair.repaired_on))
    for serial, repaired_on, description, fixed in _in(session, query, m.CustomerProduct.serial,
                                                       set(products)):
        history[serial].append(fixtures.Repair(repaired_on, description, fixed))
    return {serial: tuple(items) for serial, items in history.items()}


def _empty_codes() -> dict[str, set[str]]:
    kinds = ("skill", "outlet", "technician", "customer", "product", "ticket", "visit", "user")
    return {kind: set() for kind in kinds}


def _csv_codes(tables: Mapping[str, _Table]) -> dict[str, set[str]]:
    codes = _empty_codes()
    for kind, table in tables.items():
        for _, row in table.rows:
            for column, code_kind in (("customer_code", "customer"), ("outlet_code", "outlet"),
                                      ("technician_code", "technician"),
                                      ("pinned_technician_code", "technician"),
                                      ("product_serial", "product"), ("visit_code", "visit")):
                if row.get(column):
                    codes[code_kind].add(row[column])
            if kind == "visits":
                codes["ticket"].add(row.get("ticket_code") or row.get("visit_code", ""))
            for column in ("skills", "required_skills"):
                codes["skill"].update(code for code, _ in _skill_pairs(row.get(column, "")))
    return codes


def _dataset_codes(ds: fixtures.Dataset) -> dict[str, set[str]]:
    codes = _empty_codes()
    codes["skill"] = {s.code for s in ds.skills} | {
        code for t in ds.technicians for code, _ in t.skills} | {
        code for v in ds.visits for code, _ in v.required_skills}
    codes["outlet"] = {o.code for o in ds.outlets} | {t.outlet_code for t in ds.technicians} | {
        t.outlet_code for t in ds.tickets} | {v.outlet_code for v in ds.visits}
    codes["technician"] = {t.code for t in ds.technicians} | {s.technician_code for s in ds.shifts}
    codes["customer"] = {c.code for c in ds.customers} | {p.customer_code for p in ds.products}
    codes["product"] = {p.serial for p in ds.products} | {t.product_serial for t in ds.tickets}
    codes["ticket"] = {t.code for t in ds.tickets} | {v.ticket_code for v in ds.visits}
    codes["visit"] = {v.code for v in ds.visits}
    codes["user"] = {u.username for u in ds.users}
    return codes


# ---------------------------------------------------------------------------------------------
# From CSV rows to dataset records
# ---------------------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """A dataset to load, where each record came from, and the names to report fields by."""

    dataset: fixtures.Dataset
    where: dict[tuple[str, str], tuple[str, Row]]
    names: Mapping[str, Mapping[str, str]]
    broken: set[tuple[str, str]]  # codes whose rows were refused: don't report them as missing


class _Cells:
    """One CSV row: typed accessors that record a problem and return None on a bad value."""

    def __init__(self, file: str, row: int, values: Mapping[str, str], problems: _Problems) -> None:
        self.file, self.row, self.values, self.problems = file, row, values, problems
        self.failed = False

    def bad(self, column: str, en: str, zh: str) -> None:
        self.failed = True
        self.problems.add(self.file, self.row, column, en, zh)

    def text(self, column: str, required: bool = False) -> str:
        value = self.values.get(column, "")
        if required and not value:
            self.bad(column, "a value is required", "不能为空")
        return value

    def optional(self, column: str) -> str | None:
        return self.values.get(column) or None

    def number(self, column: str, default: float | None = None) -> float | None:
        value = self.values.get(column, "")
        if not value:
            return default
        try:
            return float(value)
        except ValueError:
            self.bad(column, f"{value!r} is not a number", f"{value!r} 不是数字")
            return None

    def integer(self, column: str, default: int | None = None, required: bool = False
                ) -> int | None:
        value = self.values.get(column, "")
        if not value:
            if required:
                self.bad(column, "a whole number is required", "应填写整数")
            return default
        try:
            return int(value)
        except ValueError:
            self.bad(column, f"{value!r} is not a whole number", f"{value!r} 不是整数")
            return None

    def boolean(self, column: str, default: bool) -> bool:
        value = self.values.get(column, "").lower()
        if not value:
            return default
        if value in TRUE_WORDS:
            return True
        if value not in FALSE_WORDS:
            self.bad(column, f"{value!r} is not yes/no (true/false, 1/0, 是/否)",
                     f"{value!r} 不是是/否（true/false、1/0、是/否）")
        return False

    def day(self, column: str, required: bool = False) -> date | None:
        value = self.values.get(column, "")
        if not value:
            if required:
                self.bad(column, "a date YYYY-MM-DD is required", "应填写日期 YYYY-MM-DD")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.bad(column, f"{value!r} is not a date YYYY-MM-DD", f"{value!r} 不是日期 YYYY-MM-DD")
            return None

    def instant(self, column: str, zone: tzinfo) -> datetime | None:
        """An ISO 8601 instant with an offset, or a local "YYYY-MM-DD HH:MM" in ``zone``."""
        value = self.values.get(column, "")
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.bad(column, f"{value!r} is not a time such as 2025-03-10 09:30 or "
                     "2025-03-10T09:30+08:00",
                     f"{value!r} 不是时间（例如 2025-03-10 09:30 或 2025-03-10T09:30+08:00）")
            return None
        return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)

    def clock_range(self, column: str, on: date | None, zone: tzinfo | None
                    ) -> tuple[datetime, datetime] | None:
        ranges = self.clock_ranges(column, on, zone, single=True)
        return ranges[0] if ranges else None

    def clock_ranges(self, column: str, on: date | None, zone: tzinfo | None,
                     single: bool = False) -> list[tuple[datetime, datetime]]:
        """"HH:MM-HH:MM|HH:MM-HH:MM" as aware instants on ``on`` in ``zone``."""
        value = self.values.get(column, "")
        if not value or on is None or zone is None:
            return []
        parts = [p.strip() for p in value.split("|")]
        if single and len(parts) > 1:
            self.bad(column, "give one range HH:MM-HH:MM", "只能填写一个时间段 HH:MM-HH:MM")
            return []
        ranges = []
        for part in parts:
            pair = _clock_pair(part)
            if pair is None:
                self.bad(column, f"{part!r} is not a time range HH:MM-HH:MM",
                         f"{part!r} 不是时间段 HH:MM-HH:MM")
                return []
            ranges.append(tuple(datetime.combine(on, t, tzinfo=zone) for t in pair))
        return ranges  # type: ignore[return-value]

    def clock_times(self, column: str) -> tuple[time, time] | tuple[None, None]:
        value = self.values.get(column, "")
        if not value:
            return None, None
        pair = _clock_pair(value)
        if pair is None:
            self.bad(column, f"{value!r} is not a time range HH:MM-HH:MM",
                     f"{value!r} 不是时间段 HH:MM-HH:MM")
            return None, None
        return pair

    def skills(self, column: str) -> tuple[tuple[str, int], ...]:
        value = self.values.get(column, "")
        pairs = _skill_pairs(value)
        if any(level is None for _, level in pairs):
            self.bad(column, f"{value!r} is not a list code:level;code:level (level 1-3)",
                     f"{value!r} 格式应为 技能:等级;技能:等级（等级 1-3）")
            return ()
        return tuple((code, level) for code, level in pairs if level is not None)


_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–~～]\s*(\d{1,2}):(\d{2})\s*$")


def _clock_pair(text: str) -> tuple[time, time] | None:
    match = _CLOCK.match(text)
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        return time(h1, m1), time(h2, m2)
    except ValueError:
        return None


def _skill_pairs(text: str) -> list[tuple[str, int | None]]:
    """Split "code:level;code" into pairs; a missing level is 1, a bad one None."""
    pairs: list[tuple[str, int | None]] = []
    for item in (p.strip() for p in text.replace("；", ";").split(";")):
        if not item:
            continue
        code, _, level = item.partition(":")
        pairs.append((code.strip(), int(level) if level.strip().isdigit() else
                      (1 if not level.strip() and ":" not in item else None)))
    return pairs


class _CsvBuilder:
    """Turns the rows of the three files into dataset records, noting where each came from."""

    def __init__(self, db: _DbState, problems: _Problems, geocoder: Geocoder | None,
                 now: datetime) -> None:
        self.db, self.problems, self.geocoder, self.now = db, problems, geocoder, now
        self.geocoded = 0
        self.geocoder_down: str | None = None
        self.where: dict[tuple[str, str], tuple[str, Row]] = {}
        self.broken: set[tuple[str, str]] = set()
        self.customers: list[fixtures.Customer] = []
        self.technicians: list[fixtures.Technician] = []
        self.shifts: list[fixtures.TechnicianShift] = []
        self.products: dict[str, fixtures.CustomerProduct] = {}
        self.tickets: dict[str, fixtures.ServiceTicket] = {}
        self.visits: list[fixtures.Visit] = []

    def build(self, tables: Mapping[str, _Table]) -> _Parsed:
        for kind, handler in (("customers", self.customer), ("technicians", self.technician),
                              ("visits", self.visit)):
            if kind in tables:
                for number, values in tables[kind].rows:
                    handler(_Cells(tables[kind].file, number, values, self.problems))
        self.require_products(tables.get("visits"))
        dataset = fixtures.Dataset(
            name="csv-import", day=min((v.day for v in self.visits), default=self.now.date()),
            seed=0, timezone=next(iter(self.db.outlet_zones.values()), "Asia/Shanghai"),
            bounding_box=self.bounding_box(),
            unskilled_visit_codes=(), skills=(), outlets=(), technicians=tuple(self.technicians),
            shifts=tuple(self.shifts), customers=tuple(self.customers),
            products=tuple(self.products.values()), tickets=tuple(self.tickets.values()),
            visits=tuple(self.visits), users=())
        return _Parsed(dataset, self.where, CSV_FIELD_NAMES, self.broken)

    def claim(self, kind: str, code: str, cells: _Cells, column: str) -> bool:
        """Record where ``code`` comes from; a second row with the same code is a problem."""
        if not code:
            return False
        key = (kind, code)
        if key in self.where:
            first = self.where[key]
            cells.bad(column, f"duplicate {column} {code!r}; first given on row {first[1]}",
                      f"{column} {code!r} 重复；首次出现在第 {first[1]} 行")
            return False
        self.where[key] = (cells.file, cells.row)
        return True

    # ----- customers -------------------------------------------------------------------------
    def customer(self, cells: _Cells) -> None:
        code = cells.text("customer_code", required=True)
        # A duplicate still has its values checked; only its record is left out.
        fresh = self.claim("customer", code, cells, "customer_code")
        address = cells.text("address", required=True)
        lat, lon = self.place(cells, "lat", "lon", address, "address")
        calling_start, calling_end = cells.clock_times("calling_hours")
        values = dict(name=cells.text("name", required=True), honorific=cells.text("honorific"),
                      phone=cells.text("phone", required=True),
                      phone_alt=cells.optional("phone_alt"), district=cells.text("district"),
                      language=(cells.text("language") or "zh").lower(), notes=cells.text("notes"))
        if not fresh:
            return
        # A row with errors still becomes a record: its other values get checked too, and the
        # errors already recorded guarantee it never reaches the loader.
        self.customers.append(fixtures.Customer(
            code=code, address=address, lat=lat, lon=lon, calling_start=calling_start,
            calling_end=calling_end, **values))

    # ----- technicians -----------------------------------------------------------------------
    def technician(self, cells: _Cells) -> None:
        code = cells.text("technician_code", required=True)
        # A duplicate still has its values checked; only its record is left out.
        fresh = self.claim("technician", code, cells, "technician_code")
        outlet_code = cells.text("outlet_code", required=True)
        address = cells.text("home_address")
        lat, lon = self.place(cells, "home_lat", "home_lon", address, "home_address")
        languages = tuple(x.strip().lower() for x in re.split(r"[;；,]", cells.text("languages"))
                          if x.strip()) or ("zh",)
        tech = dict(outlet_code=outlet_code, name=cells.text("name", required=True),
                    phone=cells.text("phone"), home_address=address,
                    skills=cells.skills("skills"), languages=languages,
                    active=cells.boolean("active", True),
                    duration_factor=cells.number("duration_factor", 1.0),
                    max_visits=cells.integer("max_visits", 10))
        shift = self.shift(cells, code, outlet_code)
        if not fresh:
            return
        self.technicians.append(fixtures.Technician(code=code, home_lat=lat, home_lon=lon, **tech))
        if shift is not None:
            self.shifts.append(shift)

    def shift(self, cells: _Cells, code: str, outlet_code: str) -> fixtures.TechnicianShift | None:
        shift_columns = [c for c in TECHNICIAN_COLUMNS if c.startswith(("shift_", "lunch_"))
                         or c in ("start_place", "end_place", "absent", "absence_reason")]
        if not any(cells.values.get(c) for c in shift_columns):
            return None  # no roster given on this row
        day = cells.day("shift_date", required=True)
        zone = self.outlet_zone(cells, outlet_code)
        hours = cells.clock_range("shift_hours", day, zone)
        if day is not None and zone is not None and hours is None and not cells.failed:
            cells.bad("shift_hours", "the working hours HH:MM-HH:MM are required with a shift_date",
                      "填写 shift_date 时必须填写工作时间 HH:MM-HH:MM")
        lunch = cells.clock_range("lunch_window", day, zone)
        if lunch is None and day is not None and zone is not None:
            lunch = (datetime.combine(day, DEFAULT_LUNCH[0], tzinfo=zone),
                     datetime.combine(day, DEFAULT_LUNCH[1], tzinfo=zone))
        minutes = cells.integer("lunch_minutes", DEFAULT_LUNCH_MINUTES)
        absent = cells.boolean("absent", False)
        if day is None or hours is None or lunch is None or minutes is None or cells.failed:
            return None
        self.where[("shift", f"{code}@{day}")] = (cells.file, cells.row)
        return fixtures.TechnicianShift(
            technician_code=code, day=day, starts_at=hours[0], ends_at=hours[1],
            lunch_window_start=lunch[0], lunch_window_end=lunch[1], lunch_minutes=minutes,
            start_place=(cells.text("start_place") or "home").lower(),
            end_place=(cells.text("end_place") or "home").lower(), absent=absent,
            absence_reason=cells.optional("absence_reason"))

    # ----- visits (with their tickets and products) ------------------------------------------
    def visit(self, cells: _Cells) -> None:
        code = cells.text("visit_code", required=True)
        # A duplicate still has its values checked; only its record is left out.
        fresh = self.claim("visit", code, cells, "visit_code")
        outlet_code = cells.text("outlet_code", required=True)
        zone = self.outlet_zone(cells, outlet_code)
        day = cells.day("day", required=True)
        windows = cells.clock_ranges("windows", day, zone)
        agreed = cells.clock_range("agreed_window", day, zone)
        pinned = cells.clock_range("pinned_start", day, zone)
        if not windows and agreed is None and not cells.values.get("windows") and day and zone:
            cells.bad("windows", "give the windows the customer accepts (or an agreed_window)",
                      "请填写客户接受的时间段（或约定时间段 agreed_window）")
        visit = dict(
            outlet_code=outlet_code, day=day, required_skills=cells.skills("required_skills"),
            duration_minutes=cells.integer("duration_minutes", required=True),
            windows=tuple(windows) or ((agreed,) if agreed else ()),
            agreed_start=agreed[0] if agreed else None, agreed_end=agreed[1] if agreed else None,
            confirmation_status=(cells.text("confirmation_status") or "unconfirmed").lower(),
            pinned_technician_code=cells.optional("pinned_technician_code"),
            pinned_start_from=pinned[0] if pinned else None,
            pinned_start_to=pinned[1] if pinned else None,
            priority=cells.integer("priority", 2))
        ticket = self.ticket(cells, code, outlet_code, zone)
        self.product(cells)
        if not fresh:
            return
        self.visits.append(fixtures.Visit(
            code=code, ticket_code=ticket.code if ticket else "", status="planned",
            actual_arrival=None, actual_start=None, actual_end=None, outcome=None, **visit))

    def ticket(self, cells: _Cells, visit_code: str, outlet_code: str, zone: tzinfo | None
               ) -> fixtures.ServiceTicket | None:
        code = cells.text("ticket_code") or visit_code
        reported = cells.instant("reported_at", zone) if zone else None
        reported = reported or (self.now.astimezone(zone) if zone else None)
        deadline = cells.instant("sla_deadline", zone) if zone else None
        in_db = self.db.tickets.get(code)
        status, level = (in_db[2], in_db[3]) if in_db else (
            "scheduled" if cells.values.get("agreed_window") else "open", 0)
        values = dict(
            customer_code=cells.text("customer_code", required=True),
            product_serial=cells.text("product_serial"), outlet_code=outlet_code,
            kind=cells.text("kind", required=True).lower() or None, symptom=cells.text("symptom"),
            channel=(cells.text("channel") or "phone").lower(),
            owner=cells.text("owner") or "import", priority=cells.integer("priority", 2) or 2)
        if in_db is not None and not cells.values.get("reported_at"):
            reported, deadline = in_db[4], deadline or in_db[5]  # keep what the ticket says
        if deadline is None and reported is not None:
            deadline = reported + DEFAULT_SLA
        ticket = fixtures.ServiceTicket(
            code=code, reported_at=reported, sla_deadline=deadline,  # type: ignore[arg-type]
            status=status, escalation_level=level, **values)
        earlier = self.tickets.get(code)
        if earlier is None:
            self.tickets[code] = ticket
            self.where.setdefault(("ticket", code), (cells.file, cells.row))
        elif (earlier.customer_code, earlier.product_serial, earlier.outlet_code) != (
                ticket.customer_code, ticket.product_serial, ticket.outlet_code):
            first = self.where[("ticket", code)][1]
            cells.bad("ticket_code", f"ticket {code!r} is given another customer, product or "
                      f"outlet than on row {first}", f"工单 {code!r} 的客户、产品或网点与第 {first} 行不一致")
            return None
        return ticket

    def product(self, cells: _Cells) -> None:
        serial = cells.values.get("product_serial", "")
        described = any(cells.values.get(c) for c in ("product_category", "product_brand",
                                                      "product_model", "invoice_date"))
        if not serial or not described:
            return  # refers to a product described elsewhere (another row or the database)
        record = dict(
            customer_code=cells.text("customer_code"),
            category=cells.text("product_category", required=True).lower() or None,
            brand=cells.text("product_brand"), model=cells.text("product_model"),
            invoice_date=cells.day("invoice_date"),
            warranty_months=cells.integer("warranty_months", 12),
            main_parts_warranty_months=cells.integer("main_parts_warranty_months", 36))
        product = fixtures.CustomerProduct(serial=serial, repairs=self.db.repairs.get(serial, ()),
                                           **record)
        earlier = self.products.get(serial)
        if earlier is None:
            self.products[serial] = product
            self.where[("product", serial)] = (cells.file, cells.row)
        elif earlier != product:
            first = self.where[("product", serial)][1]
            cells.bad("product_serial",
                      f"product {serial!r} is described differently on row {first}",
                      f"产品 {serial!r} 的信息与第 {first} 行不一致")

    def require_products(self, table: _Table | None) -> None:
        """A visit's product must be described once, unless the database knows it already."""
        if table is None:
            return
        for number, values in table.rows:
            serial = values.get("product_serial", "")
            if (serial and serial not in self.products and serial not in self.db.products
                    and ("product", serial) not in self.broken):
                self.problems.add(table.file, number, "product_category",
                                  f"product {serial!r} is new: give its product_category "
                                  "(and brand, model)",
                                  f"产品 {serial!r} 为新产品：请填写 product_category（及品牌、型号）")
                self.broken.add(("product", serial))

    # ----- shared helpers --------------------------------------------------------------------
    def outlet_zone(self, cells: _Cells, outlet_code: str) -> tzinfo | None:
        if not outlet_code:
            return None
        name = self.db.outlet_zones.get(outlet_code)
        if name is None:
            cells.bad("outlet_code", f"unknown outlet {outlet_code!r}", f"未知网点 {outlet_code!r}")
            return None
        return zone_named(name)

    def place(self, cells: _Cells, lat_column: str, lon_column: str, address: str,
              address_column: str) -> tuple[float | None, float | None]:
        """The row's coordinates, or its address geocoded when both coordinates are empty."""
        lat, lon = cells.number(lat_column), cells.number(lon_column)
        given = bool(cells.values.get(lat_column)), bool(cells.values.get(lon_column))
        if any(given) and not all(given):
            missing = lon_column if given[0] else lat_column
            cells.bad(missing, "give both coordinates, or neither to geocode the address",
                      "经纬度须同时填写，或都不填以按地址进行地理编码")
            return None, None
        if all(given):
            return lat, lon
        if not address:
            cells.bad(lat_column, "give the coordinates or an address",
                      "请填写经纬度或地址")
            return None, None
        return self.geocode(cells, address, address_column)

    def geocode(self, cells: _Cells, address: str, column: str
                ) -> tuple[float | None, float | None]:
        if self.geocoder is None:
            cells.bad(column, "the row has no coordinates and no geocoder is configured "
                      "(set DISPATCH_NOMINATIM_URL, or fill in the coordinates)",
                      "该行缺少经纬度且未配置地理编码服务（请设置 DISPATCH_NOMINATIM_URL 或填写经纬度）")
            return None, None
        if self.geocoder_down is not None:
            cells.bad(column, f"not geocoded: {self.geocoder_down}",
                      f"未能进行地理编码：{self.geocoder_down}")
            return None, None
        try:
            found = self.geocoder.locate(address)
        except GeocodingError as exc:
            # One failure says the service is down: don't wait for it again on every row.
            self.geocoder_down = exc.message_en
            cells.bad(column, exc.message_en, exc.message_zh)
            return None, None
        if found is None:
            cells.bad(column, f"the geocoder cannot find the address {address!r}",
                      f"地理编码服务找不到地址 {address!r}")
            return None, None
        self.geocoded += 1
        return found

    def bounding_box(self) -> tuple[float, float, float, float]:
        points = [(c.lat, c.lon) for c in self.customers] + [
            (t.home_lat, t.home_lon) for t in self.technicians]
        points = [p for p in points if p[0] is not None and p[1] is not None]
        if not points:
            return (0.0, 0.0, 0.0, 0.0)
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        return (min(lats), min(lons), max(lats), max(lons))


# ---------------------------------------------------------------------------------------------
# A JSON day: locate each record
# ---------------------------------------------------------------------------------------------

_FIXTURE_PLACE = re.compile(
    r"^(?P<row>\w+\[\d+\])(?: \([^)]*\))?(?:, [\w\[\]]+)?: (?:field (?P<field>[\w\[\]]+): )?")


def _split_fixture_error(message: str) -> tuple[str | None, str | None, str]:
    match = _FIXTURE_PLACE.match(message)
    if match:
        return match.group("row"), match.group("field"), message
    found = re.match(r"^field (?P<field>[\w/\[\]]+): ", message)
    return None, found.group("field") if found else None, message


def _index_dataset(ds: fixtures.Dataset, source: str, problems: _Problems) -> _Parsed:
    where: dict[tuple[str, str], tuple[str, Row]] = {}
    groups: Iterable[tuple[str, str, Sequence[Any], Callable[[Any], str]]] = (
        ("skill", "skills", ds.skills, lambda r: r.code),
        ("outlet", "outlets", ds.outlets, lambda r: r.code),
        ("technician", "technicians", ds.technicians, lambda r: r.code),
        ("shift", "shifts", ds.shifts, lambda r: f"{r.technician_code}@{r.day}"),
        ("customer", "customers", ds.customers, lambda r: r.code),
        ("product", "products", ds.products, lambda r: r.serial),
        ("ticket", "tickets", ds.tickets, lambda r: r.code),
        ("visit", "visits", ds.visits, lambda r: r.code),
        ("user", "users", ds.users, lambda r: r.username),
    )
    for kind, list_name, records, key_of in groups:
        for index, record in enumerate(records):
            key, row = key_of(record), f"{list_name}[{index}]"
            if (kind, key) in where:
                first = where[(kind, key)][1]
                problems.add(source, row, "code", f"duplicate {kind} {key!r}; first at {first}",
                             f"重复的{kind} {key!r}；首次出现在 {first}")
                continue
            where[(kind, key)] = (source, row)
    return _Parsed(ds, where, {}, set())


# ---------------------------------------------------------------------------------------------
# Checks of a whole dataset against itself and the database
# ---------------------------------------------------------------------------------------------


class _Checker:
    """Reports each problem of a dataset at the file, row and field it came from."""

    def __init__(self, parsed: _Parsed, db: _DbState, problems: _Problems) -> None:
        self.parsed, self.db, self.problems = parsed, db, problems
        ds = parsed.dataset
        self.skills = db.skills | {s.code for s in ds.skills}
        self.outlets = set(db.outlet_zones) | {o.code for o in ds.outlets}
        self.technician_outlets = {**db.technician_outlets,
                                   **{t.code: t.outlet_code for t in ds.technicians}}
        self.customers = db.customers | {c.code for c in ds.customers}
        self.product_owners = {**db.products, **{p.serial: p.customer_code for p in ds.products}}
        self.ticket_owners = {**{c: v[0] for c, v in db.tickets.items()},
                              **{t.code: t.customer_code for t in ds.tickets}}
        self.ticket_outlets = {**{c: v[1] for c, v in db.tickets.items()},
                               **{t.code: t.outlet_code for t in ds.tickets}}

    def bad(self, kind: str, key: str, field_name: str, en: str, zh: str) -> None:
        file, row = self.parsed.where.get((kind, key), ("?", None))  # type: ignore[assignment]
        column = self.parsed.names.get(kind, {}).get(field_name, field_name)
        self.problems.add(file, row, column, en, zh)

    def known(self, kind: str, key: str, field_name: str, ref_kind: str, ref: str | None,
              pool: Iterable[str], label_en: str, label_zh: str) -> bool:
        """Report ``ref`` unless it is empty, known, or its own row already failed."""
        if not ref or ref in pool or (ref_kind, ref) in self.parsed.broken:
            return True
        self.bad(kind, key, field_name, f"unknown {label_en} {ref!r}", f"未知{label_zh} {ref!r}")
        return False

    def enum(self, kind: str, key: str, field_name: str, value: str | None,
             enum_class: type[Any]) -> None:
        if value is None:
            return
        allowed = [member.value for member in enum_class]
        if value not in allowed:
            self.bad(kind, key, field_name, f"{value!r} is not one of: {', '.join(allowed)}",
                     f"{value!r} 不是允许的取值（{', '.join(allowed)}）")

    def in_range(self, kind: str, key: str, field_name: str, value: float | int | None,
                 low: float, high: float) -> None:
        """Report a value outside [low, high]; None is a value already reported unreadable."""
        if value is not None and not low <= value <= high:
            self.bad(kind, key, field_name, f"{value} is outside {low:g}..{high:g}",
                     f"{value} 超出范围 {low:g}..{high:g}")

    def ordered(self, kind: str, key: str, field_name: str, start: Any, end: Any) -> bool:
        if start is not None and end is not None and not end > start:
            self.bad(kind, key, field_name, f"ends ({_hm(end)}) before it starts ({_hm(start)})",
                     f"结束时间（{_hm(end)}）早于开始时间（{_hm(start)}）")
            return False
        return True

    def skill_list(self, kind: str, key: str, field_name: str,
                   pairs: Sequence[tuple[str, int]]) -> None:
        for code, level in pairs:
            self.known(kind, key, field_name, "skill", code, self.skills, "skill", "技能")
            self.in_range(kind, key, field_name, level, 1, 3)

    def coordinates(self, kind: str, key: str, names: tuple[str, str], lat: float | None,
                    lon: float | None) -> None:
        self.in_range(kind, key, names[0], lat, -90, 90)
        self.in_range(kind, key, names[1], lon, -180, 180)


def _check_dataset(parsed: _Parsed, db: _DbState, problems: _Problems, *,
                   protect_live: bool) -> None:
    """Report every reference, range and clash problem of ``parsed`` into ``problems``."""
    check = _Checker(parsed, db, problems)
    ds = parsed.dataset
    for outlet in ds.outlets:
        check.coordinates("outlet", outlet.code, ("lat", "lon"), outlet.lat, outlet.lon)
    for tech in ds.technicians:
        _check_technician(check, tech)
    for shift in ds.shifts:
        _check_shift(check, shift)
    for customer in ds.customers:
        _check_customer(check, customer)
    for product in ds.products:
        _check_product(check, product)
    for ticket in ds.tickets:
        _check_ticket(check, ticket)
    for visit in ds.visits:
        _check_visit(check, visit, protect_live)
    for user in ds.users:
        _check_user(check, user)


def _check_technician(check: _Checker, tech: fixtures.Technician) -> None:
    key = tech.code
    check.known("technician", key, "outlet_code", "outlet", tech.outlet_code, check.outlets,
                "outlet", "网点")
    check.coordinates("technician", key, ("home_lat", "home_lon"), tech.home_lat, tech.home_lon)
    check.skill_list("technician", key, "skills", tech.skills)
    for language in tech.languages:
        check.enum("technician", key, "languages", language, m.Language)
    if tech.duration_factor is not None and tech.duration_factor <= 0:
        check.in_range("technician", key, "duration_factor", tech.duration_factor, 0.1, 10)
    if tech.max_visits is not None and tech.max_visits < 1:
        check.in_range("technician", key, "max_visits", tech.max_visits, 1, 100)
    moved_from = check.db.technician_outlets.get(key)
    if moved_from is not None and moved_from != tech.outlet_code:
        check.bad("technician", key, "outlet_code",
                  f"technician {key!r} belongs to outlet {moved_from!r}; an import does not move "
                  "technicians between outlets",
                  f"技师 {key!r} 属于网点 {moved_from!r}；导入不能把技师调到其他网点")


def _check_shift(check: _Checker, shift: fixtures.TechnicianShift) -> None:
    key = f"{shift.technician_code}@{shift.day}"
    check.known("shift", key, "technician_code", "technician", shift.technician_code,
                check.technician_outlets, "technician", "技师")
    check.ordered("shift", key, "starts_at", shift.starts_at, shift.ends_at)
    check.ordered("shift", key, "lunch_window_start", shift.lunch_window_start,
                  shift.lunch_window_end)
    if shift.lunch_minutes < 0:
        check.in_range("shift", key, "lunch_minutes", shift.lunch_minutes, 0, 240)
    check.enum("shift", key, "start_place", shift.start_place, m.Place)
    check.enum("shift", key, "end_place", shift.end_place, m.Place)


def _check_customer(check: _Checker, customer: fixtures.Customer) -> None:
    key = customer.code
    check.coordinates("customer", key, ("lat", "lon"), customer.lat, customer.lon)
    check.enum("customer", key, "language", customer.language, m.Language)
    check.ordered("customer", key, "calling_start", customer.calling_start, customer.calling_end)


def _check_product(check: _Checker, product: fixtures.CustomerProduct) -> None:
    key = product.serial
    check.known("product", key, "customer_code", "customer", product.customer_code,
                check.customers, "customer", "客户")
    check.enum("product", key, "category", product.category, m.ProductCategory)
    for name in ("warranty_months", "main_parts_warranty_months"):
        if (getattr(product, name) or 0) < 0:
            check.in_range("product", key, name, getattr(product, name), 0, 240)
    owner = check.db.products.get(key)
    if owner is not None and owner != product.customer_code:
        check.bad("product", key, "serial",
                  f"product {key!r} belongs to customer {owner!r}, not {product.customer_code!r}",
                  f"产品 {key!r} 属于客户 {owner!r}，而非 {product.customer_code!r}")


def _check_ticket(check: _Checker, ticket: fixtures.ServiceTicket) -> None:
    key = ticket.code
    check.known("ticket", key, "customer_code", "customer", ticket.customer_code,
                check.customers, "customer", "客户")
    check.known("ticket", key, "outlet_code", "outlet", ticket.outlet_code, check.outlets,
                "outlet", "网点")
    if check.known("ticket", key, "product_serial", "product", ticket.product_serial,
                   check.product_owners, "product", "产品"):
        owner = check.product_owners.get(ticket.product_serial)
        if owner is not None and owner != ticket.customer_code:
            check.bad("ticket", key, "product_serial",
                      f"product {ticket.product_serial!r} belongs to customer {owner!r}, not "
                      f"{ticket.customer_code!r}",
                      f"产品 {ticket.product_serial!r} 属于客户 {owner!r}，而非 {ticket.customer_code!r}")
    check.enum("ticket", key, "kind", ticket.kind, m.TicketKind)
    check.enum("ticket", key, "channel", ticket.channel, m.Channel)
    check.enum("ticket", key, "status", ticket.status, m.TicketStatus)
    check.in_range("ticket", key, "priority", ticket.priority, 1, 4)
    check.ordered("ticket", key, "sla_deadline", ticket.reported_at, ticket.sla_deadline)
    in_db = check.db.tickets.get(key)
    if in_db is not None and in_db[0] != ticket.customer_code:
        check.bad("ticket", key, "code",
                  f"ticket {key!r} belongs to customer {in_db[0]!r}, not {ticket.customer_code!r}",
                  f"工单 {key!r} 属于客户 {in_db[0]!r}，而非 {ticket.customer_code!r}")


def _check_visit(check: _Checker, visit: fixtures.Visit, protect_live: bool) -> None:
    key = visit.code
    check.known("visit", key, "outlet_code", "outlet", visit.outlet_code, check.outlets,
                "outlet", "网点")
    check.known("visit", key, "ticket_code", "ticket", visit.ticket_code, check.ticket_owners,
                "ticket", "工单")
    ticket_outlet = check.ticket_outlets.get(visit.ticket_code)
    if ticket_outlet is not None and ticket_outlet != visit.outlet_code:
        check.bad("visit", key, "outlet_code",
                  f"the visit's outlet {visit.outlet_code!r} differs from its ticket's "
                  f"{ticket_outlet!r}", f"上门的网点 {visit.outlet_code!r} 与工单的网点 {ticket_outlet!r} 不一致")
    check.skill_list("visit", key, "required_skills", visit.required_skills)
    if visit.duration_minutes is not None and visit.duration_minutes <= 0:
        check.in_range("visit", key, "duration_minutes", visit.duration_minutes, 1, 24 * 60)
    check.in_range("visit", key, "priority", visit.priority, 1, 4)
    check.enum("visit", key, "confirmation_status", visit.confirmation_status,
               m.ConfirmationStatus)
    check.enum("visit", key, "status", visit.status, m.VisitStatus)
    windows_ok = all([check.ordered("visit", key, "windows", start, end)
                      for start, end in visit.windows])
    agreed_ok = check.ordered("visit", key, "agreed_start", visit.agreed_start, visit.agreed_end)
    check.ordered("visit", key, "pinned_start_from", visit.pinned_start_from,
                  visit.pinned_start_to)
    _check_agreement(check, visit, windows_ok and agreed_ok)
    if visit.pinned_technician_code:
        if check.known("visit", key, "pinned_technician_code", "technician",
                       visit.pinned_technician_code, check.technician_outlets, "technician", "技师"):
            home = check.technician_outlets.get(visit.pinned_technician_code)
            if home is not None and home != visit.outlet_code:
                check.bad("visit", key, "pinned_technician_code",
                          f"technician {visit.pinned_technician_code!r} works for outlet "
                          f"{home!r}, not {visit.outlet_code!r}",
                          f"技师 {visit.pinned_technician_code!r} 属于网点 {home!r}，"
                          f"而非 {visit.outlet_code!r}")
    _check_visit_against_db(check, visit, protect_live)


def _check_agreement(check: _Checker, visit: fixtures.Visit, times_ok: bool) -> None:
    key = visit.code
    if (visit.agreed_start is None) != (visit.agreed_end is None):
        check.bad("visit", key, "agreed_start", "give both ends of the agreed window",
                  "约定时间段须同时填写开始和结束")
        return
    if visit.confirmation_status in AGREED_STATUSES and visit.agreed_start is None:
        check.bad("visit", key, "agreed_start",
                  f"a {visit.confirmation_status} visit needs its agreed window",
                  "已确认的上门必须有约定时间段")
    if times_ok and visit.agreed_start is not None and visit.windows and not any(
            start <= visit.agreed_start and visit.agreed_end <= end  # type: ignore[operator]
            for start, end in visit.windows):
        check.bad("visit", key, "agreed_start",
                  "the agreed window lies outside every window the customer accepts",
                  "约定时间段不在客户接受的任何时间段内")


def _check_visit_against_db(check: _Checker, visit: fixtures.Visit, protect_live: bool) -> None:
    key = visit.code
    in_db = check.db.visits.get(key)
    if in_db is None:
        return
    if in_db.ticket_code != visit.ticket_code:
        check.bad("visit", key, "code",
                  f"visit {key!r} belongs to ticket {in_db.ticket_code!r}, "
                  f"not {visit.ticket_code!r}",
                  f"上门 {key!r} 属于工单 {in_db.ticket_code!r}，而非 {visit.ticket_code!r}")
    if not protect_live:
        return  # a JSON day is a snapshot: restoring it may set any state
    if in_db.status in LIVE_VISIT_STATUSES:
        check.bad("visit", key, "code",
                  f"visit {key!r} is already {in_db.status}; an import cannot change it",
                  f"上门 {key!r} 已处于 {in_db.status} 状态，导入不能修改")
    elif in_db.confirmation in AGREED_STATUSES and _changed(in_db.agreed, visit):
        zone = visit.windows[0][0].tzinfo if visit.windows else None
        agreed = "-".join(_hm(t.astimezone(zone)) if t else "?" for t in in_db.agreed)
        check.bad("visit", key, "agreed_start",
                  f"visit {key!r} has an appointment agreed with the customer ({agreed}); "
                  "change it with the customer's consent on the dispatch board, not by import",
                  f"上门 {key!r} 已与客户约定时间（{agreed}），须征得客户同意后在调度台修改，不能通过导入修改")


def _changed(agreed: tuple[datetime | None, datetime | None], visit: fixtures.Visit) -> bool:
    return (agreed[0], agreed[1]) != (visit.agreed_start, visit.agreed_end)


def _check_user(check: _Checker, user: fixtures.User) -> None:
    key = user.username
    check.enum("user", key, "role", user.role, m.Role)
    check.known("user", key, "technician_code", "technician", user.technician_code,
                check.technician_outlets, "technician", "技师")
    check.known("user", key, "outlet_code", "outlet", user.outlet_code, check.outlets,
                "outlet", "网点")
    if key not in check.db.users and not user.password:
        check.bad("user", key, "password", f"new user {key!r} needs a password",
                  f"新用户 {key!r} 需要密码")


def _hm(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%H:%M")
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return str(value)


def iter_errors(error: DataImportError) -> Iterator[dict[str, Any]]:
    """Yield each problem of a refused import as a JSON-ready dict (file, row, field, messages)."""
    for item in error.errors:
        yield {**item.location(), "message_zh": item.reason_zh, "message_en": item.reason_en}
