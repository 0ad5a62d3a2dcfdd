"""CSV and JSON import (all or nothing, errors at file/row/field), JSON export, the commands."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import fixtures
from dispatch import models as m
from dispatch.cli import main
from dispatch.db import make_engine
from dispatch.errors import ValidationError
from dispatch.importer import DataImportError, export_day, import_csv, import_day_json
from dispatch.loader import load_dataset

DAY = date(2025, 3, 10)
DATA = Path(__file__).resolve().parent.parent / "data"
NOW = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
TINY = replace(fixtures.generate("tiny", DAY, 0), users=())  # users: hashing is slow


def counts(session: Session) -> dict[str, int]:
    """Rows in every table as this session sees them (pending writes included)."""
    return {table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in m.Base.metadata.sorted_tables}


@pytest.fixture
def base(session: Session) -> Session:
    """The session with the tiny day (outlet TY-SN, its skills, customers, visits) committed."""
    load_dataset(session, TINY)
    session.commit()
    return session


@pytest.fixture(scope="module")
def tiny_sqlite(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding the tiny day, made once for the module."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        load_dataset(session, TINY)
        session.commit()
    engine.dispose()
    return path


@pytest.fixture
def quick_base(tiny_sqlite: Path, tmp_path: Path) -> Iterator[Session]:
    """A session on a fresh copy of the tiny day in SQLite.

    For input checks that never reach the database's own logic: one backend is enough and
    copying a loaded file is far faster than loading the day for every case.
    """
    path = tmp_path / "tiny.db"
    shutil.copyfile(tiny_sqlite, path)
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        yield session
    engine.dispose()


def samples(tmp_path: Path) -> dict[str, Path]:
    """Copies of the sample CSV files in tests/data, by kind."""
    return {kind: Path(shutil.copy(DATA / f"{kind}.csv", tmp_path / f"{kind}.csv"))
            for kind in ("customers", "technicians", "visits")}


def import_samples(session: Session, files: dict[str, Path]) -> Any:
    """Import the three files (any replaced by a bad one) at a fixed 'now'."""
    return import_csv(session, customers=files["customers"], technicians=files["technicians"],
                      visits=files["visits"], now=NOW)


def by_code(session: Session, model: Any, code: str) -> Any:
    """The row of ``model`` with ``code``."""
    return session.scalars(select(model).where(model.code == code)).one()


# ---------------------------------------------------------------------------------------------
# A good import
# ---------------------------------------------------------------------------------------------


def test_sample_customers_file_starts_with_a_bom() -> None:
    """The sample customers file carries a UTF-8 BOM, so the good import also proves it is read."""
    assert (DATA / "customers.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_good_import_creates_every_row(base: Session, tmp_path: Path) -> None:
    """Three customers, two technicians with shifts and three visits with tickets are created."""
    before = counts(base)
    import_samples(base, samples(tmp_path))
    after = counts(base)
    for table, added in (("customers", 3), ("technicians", 2), ("technician_shifts", 2),
                         ("visits", 3), ("service_tickets", 3), ("customer_products", 3)):
        assert after[table] - before[table] == added, table


def test_chinese_text_is_kept(base: Session, tmp_path: Path) -> None:
    """Chinese names, addresses and notes arrive intact (UTF-8)."""
    import_samples(base, samples(tmp_path))
    customer = by_code(base, m.Customer, "IMP-C001")
    assert (customer.name, customer.honorific) == ("张伟", "先生")
    assert customer.notes == "小区东门进，车位紧张"
    assert by_code(base, m.ServiceTicket, "IMP-TK001").symptom == "新购挂机安装"


def test_skills_and_levels_are_read(base: Session, tmp_path: Path) -> None:
    """"code:level;code:level" becomes the technician's skills with levels."""
    import_samples(base, samples(tmp_path))
    assert by_code(base, m.Technician, "IMP-T01").skill_levels() == {
        "ac_install": 3, "ac_repair": 2, "refrigerant": 2, "height_work": 1}


def test_local_windows_are_in_the_outlets_zone(base: Session, tmp_path: Path) -> None:
    """"09:00-11:00|13:00-15:00" are two Shanghai windows (01:00 and 05:00 UTC)."""
    import_samples(base, samples(tmp_path))
    visit = by_code(base, m.Visit, "IMP-V001")
    starts = [w.starts_at for w in visit.windows]
    assert starts == [datetime(2025, 3, 10, 1, tzinfo=UTC), datetime(2025, 3, 10, 5, tzinfo=UTC)]
    assert visit.agreed_start == datetime(2025, 3, 10, 1, tzinfo=UTC)
    assert visit.confirmation_status == m.ConfirmationStatus.CONFIRMED


def test_times_with_and_without_offset(base: Session, tmp_path: Path) -> None:
    """A local "YYYY-MM-DD HH:MM" is Shanghai time; an ISO time with an offset keeps its instant."""
    import_samples(base, samples(tmp_path))
    assert by_code(base, m.ServiceTicket, "IMP-TK001").reported_at == datetime(
        2025, 3, 8, 2, 15, tzinfo=UTC)
    assert by_code(base, m.ServiceTicket, "IMP-V002").reported_at == datetime(
        2025, 3, 9, 12, 5, tzinfo=UTC)


def test_missing_sla_deadline_is_24_hours_after_report(base: Session, tmp_path: Path) -> None:
    """A visit without sla_deadline gets the domain's 24-hour response promise."""
    import_samples(base, samples(tmp_path))
    ticket = by_code(base, m.ServiceTicket, "IMP-TK001")
    assert ticket.sla_deadline == datetime(2025, 3, 9, 2, 15, tzinfo=UTC)


def test_importing_twice_changes_nothing(base: Session, tmp_path: Path) -> None:
    """The second import of the same files creates and updates nothing."""
    files = samples(tmp_path)
    import_samples(base, files)
    base.commit()
    report = import_samples(base, files)
    assert report.loaded.total_created == 0 and report.loaded.total_updated == 0


# ---------------------------------------------------------------------------------------------
# Bad input: one error at its file, row and field; nothing written
# ---------------------------------------------------------------------------------------------

CUSTOMERS = "customer_code,name,phone,address,lat,lon\n"
TECHNICIANS = "technician_code,outlet_code,name,home_lat,home_lon,skills\n"
VISITS = "visit_code,outlet_code,customer_code,day,duration_minutes,windows,kind\n"
GOOD_VISIT = "IMP-V9,TY-SN,IMP-C001,2025-03-10,60,09:00-11:00,repair\n"

BAD_CASES = [
    # (id, kind, content, row, field)
    ("malformed", "customers", CUSTOMERS + 'X1,"张三,1,路,36,120\n', 2, None),
    ("short-row", "customers", CUSTOMERS + "X1,张三,1,路,36\n", 2, None),
    ("missing-column", "customers", "customer_code,name,address\nX1,张三,路\n", 1, "phone"),
    ("unknown-column", "customers", CUSTOMERS.strip() + ",colour\nX1,张三,1,路,36,120,红\n", 1,
     "colour"),
    ("empty-file", "customers", "", 1, None),
    ("lat-out-of-range", "customers", CUSTOMERS + "X1,张三,1,路,95,120\n", 2, "lat"),
    ("lon-not-a-number", "customers", CUSTOMERS + "X1,张三,1,路,36,东经120\n", 2, "lon"),
    ("one-coordinate", "customers", CUSTOMERS + "X1,张三,1,路,36,\n", 2, "lon"),
    ("duplicate-customer", "customers",
     CUSTOMERS + "X1,张三,1,路,36,120\nX1,李四,2,路,36,120\n", 3, "customer_code"),
    ("bad-language", "customers", CUSTOMERS.strip() + ",language\nX1,张三,1,路,36,120,fr\n", 2,
     "language"),
    ("calling-hours-reversed", "customers",
     CUSTOMERS.strip() + ",calling_hours\nX1,张三,1,路,36,120,20:00-18:00\n", 2, "calling_hours"),
    ("unknown-skill", "technicians", TECHNICIANS + "T9,TY-SN,王强,36,120,ac_install:2;飞行:1\n", 2,
     "skills"),
    ("skill-level-4", "technicians", TECHNICIANS + "T9,TY-SN,王强,36,120,ac_install:4\n", 2,
     "skills"),
    ("skill-syntax", "technicians", TECHNICIANS + "T9,TY-SN,王强,36,120,ac_install:高\n", 2,
     "skills"),
    ("unknown-outlet", "technicians", TECHNICIANS + "T9,NOPE,王强,36,120,ac_install:2\n", 2,
     "outlet_code"),
    ("duplicate-technician", "technicians",
     TECHNICIANS + "T9,TY-SN,王强,36,120,washer:1\nT9,TY-SN,王强,36,120,washer:1\n", 3,
     "technician_code"),
    ("shift-reversed", "technicians",
     TECHNICIANS.strip() + ",shift_date,shift_hours\nT9,TY-SN,王强,36,120,washer:1,2025-03-10,"
     "18:00-09:00\n", 2, "shift_hours"),
    ("shift-without-hours", "technicians",
     TECHNICIANS.strip() + ",shift_date\nT9,TY-SN,王强,36,120,washer:1,2025-03-10\n", 2,
     "shift_hours"),
    ("bad-boolean", "technicians",
     TECHNICIANS.strip() + ",active\nT9,TY-SN,王强,36,120,washer:1,maybe\n", 2, "active"),
    ("unknown-customer", "visits",
     VISITS + "IMP-V9,TY-SN,NOBODY,2025-03-10,60,09:00-11:00,repair\n", 2, "customer_code"),
    ("unknown-pinned-technician", "visits",
     VISITS.strip() + ",pinned_technician_code\n" + GOOD_VISIT.strip() + ",NOBODY\n", 2,
     "pinned_technician_code"),
    ("window-reversed", "visits",
     VISITS + "IMP-V9,TY-SN,IMP-C001,2025-03-10,60,11:00-09:00,repair\n", 2, "windows"),
    ("second-window-reversed", "visits",
     VISITS + "IMP-V9,TY-SN,IMP-C001,2025-03-10,60,09:00-11:00|15:00-13:00,repair\n", 2, "windows"),
    ("window-syntax", "visits", VISITS + "IMP-V9,TY-SN,IMP-C001,2025-03-10,60,上午,repair\n", 2,
     "windows"),
    ("no-window", "visits", VISITS + "IMP-V9,TY-SN,IMP-C001,2025-03-10,60,,repair\n", 2, "windows"),
    ("bad-duration", "visits", VISITS + "IMP-V9,TY-SN,IMP-C001,2025-03-10,一小时,09:00-11:00,repair\n",
     2, "duration_minutes"),
    ("zero-duration", "visits", VISITS + "IMP-V9,TY-SN,IMP-C001,2025-03-10,0,09:00-11:00,repair\n",
     2, "duration_minutes"),
    ("bad-date", "visits", VISITS + "IMP-V9,TY-SN,IMP-C001,2025-02-30,60,09:00-11:00,repair\n", 2,
     "day"),
    ("bad-kind", "visits", VISITS + "IMP-V9,TY-SN,IMP-C001,2025-03-10,60,09:00-11:00,fix\n", 2,
     "kind"),
    ("duplicate-visit", "visits", VISITS + GOOD_VISIT + GOOD_VISIT, 3, "visit_code"),
    ("bad-reported-at", "visits",
     VISITS.strip() + ",reported_at\n" + GOOD_VISIT.strip() + ",昨天上午\n", 2, "reported_at"),
    ("bad-priority", "visits", VISITS.strip() + ",priority\n" + GOOD_VISIT.strip() + ",9\n", 2,
     "priority"),
    ("bad-confirmation", "visits",
     VISITS.strip() + ",confirmation_status\n" + GOOD_VISIT.strip() + ",maybe\n", 2,
     "confirmation_status"),
    ("confirmed-without-agreed", "visits",
     VISITS.strip() + ",confirmation_status\n" + GOOD_VISIT.strip() + ",confirmed\n", 2,
     "agreed_window"),
    ("agreed-outside-windows", "visits",
     VISITS.strip() + ",agreed_window\n" + GOOD_VISIT.strip() + ",14:00-16:00\n", 2,
     "agreed_window"),
    ("new-product-without-category", "visits",
     VISITS.strip() + ",product_serial\n" + GOOD_VISIT.strip() + ",SN-NEW-1\n", 2,
     "product_category"),
]


@pytest.mark.parametrize(("kind", "content", "row", "field"),
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_CASES])
def test_bad_input_is_refused_at_its_row_and_field(quick_base: Session, tmp_path: Path, kind: str,
                                                   content: str, row: int,
                                                   field: str | None) -> None:
    """Each defect gives one error naming file, row and field; no table changes."""
    files = samples(tmp_path)
    files[kind].write_text(content, encoding="utf-8")
    before = counts(quick_base)
    with pytest.raises(DataImportError) as caught:
        import_samples(quick_base, files)
    locations = [(e.file, e.row, e.field) for e in caught.value.errors]
    assert (f"{kind}.csv", row, field) in locations
    assert counts(quick_base) == before


def test_not_utf8_is_refused(quick_base: Session, tmp_path: Path) -> None:
    """A file saved as GBK is refused with a hint to save it as UTF-8, at the offending line."""
    files = samples(tmp_path)
    files["customers"].write_bytes((CUSTOMERS + "X1,张三,1,路,36,120\n").encode("gbk"))
    with pytest.raises(DataImportError) as caught:
        import_samples(quick_base, files)
    (error,) = caught.value.errors
    assert (error.file, error.row) == ("customers.csv", 2) and "UTF-8" in error.message_en


def test_every_error_of_every_file_is_listed(quick_base: Session, tmp_path: Path) -> None:
    """Errors in several rows and files are all reported at once, in file and row order."""
    files = samples(tmp_path)
    files["customers"].write_text(CUSTOMERS + "X1,张三,1,路,95,120\nX2,李四,2,路,36,999\n",
                                  encoding="utf-8")
    customer = TINY.customers[0].code
    files["visits"].write_text(VISITS + f"V1,NOPE,{customer},2025-03-10,60,09:00-11:00,repair\n",
                               encoding="utf-8")
    with pytest.raises(DataImportError) as caught:
        import_samples(quick_base, files)
    assert [(e.file, e.row, e.field) for e in caught.value.errors] == [
        ("customers.csv", 2, "lat"), ("customers.csv", 3, "lon"), ("visits.csv", 2, "outlet_code")]
    text = caught.value.bilingual()
    assert "3 problem(s)" in text and "共 3 个问题" in text


def test_product_of_another_customer_is_refused(base: Session, tmp_path: Path) -> None:
    """A visit naming a stored product of another customer is an error at product_serial."""
    serial = TINY.products[0].serial
    files = samples(tmp_path)
    files["visits"].write_text(VISITS.strip() + ",product_serial\n" + GOOD_VISIT.strip()
                               + f",{serial}\n", encoding="utf-8")
    with pytest.raises(DataImportError) as caught:
        import_samples(base, files)
    assert [(e.row, e.field) for e in caught.value.errors] == [(2, "product_serial")]


def existing_visit_row(visit: fixtures.Visit, window: str, agreed: str, status: str) -> str:
    """A visits file re-describing a stored tiny visit with new windows."""
    ticket = next(t for t in TINY.tickets if t.code == visit.ticket_code)
    return ("visit_code,ticket_code,outlet_code,customer_code,day,duration_minutes,windows,"
            "agreed_window,confirmation_status,kind,product_serial\n"
            f"{visit.code},{ticket.code},{visit.outlet_code},{ticket.customer_code},{DAY},"
            f"{visit.duration_minutes},{window},{agreed},{status},{ticket.kind},"
            f"{ticket.product_serial}\n")


def test_agreed_appointment_is_not_changed_by_import(base: Session, tmp_path: Path) -> None:
    """A confirmed visit's agreed window cannot be moved by an import (it needs consent)."""
    visit = next(v for v in TINY.visits if v.confirmation_status == "confirmed")
    files = samples(tmp_path)
    files["visits"].write_text(existing_visit_row(visit, "19:00-21:00", "19:00-21:00",
                                                  "confirmed"), encoding="utf-8")
    before = counts(base)
    with pytest.raises(DataImportError) as caught:
        import_samples(base, files)
    assert [(e.row, e.field) for e in caught.value.errors] == [(2, "agreed_window")]
    assert "consent" in caught.value.errors[0].message_en
    assert counts(base) == before


def test_visit_under_way_is_not_changed_by_import(base: Session, tmp_path: Path) -> None:
    """A visit already done cannot be rewritten by an import."""
    visit = next(v for v in TINY.visits if v.confirmation_status != "confirmed")
    by_code(base, m.Visit, visit.code).status = m.VisitStatus.DONE
    base.commit()
    files = samples(tmp_path)
    files["visits"].write_text(existing_visit_row(visit, "19:00-21:00", "", "unconfirmed"),
                               encoding="utf-8")
    with pytest.raises(DataImportError) as caught:
        import_samples(base, files)
    assert [(e.row, e.field) for e in caught.value.errors] == [(2, "visit_code")]


def test_unconfirmed_visit_may_be_updated(base: Session, tmp_path: Path) -> None:
    """An unconfirmed stored visit takes the imported windows."""
    visit = next(v for v in TINY.visits if v.confirmation_status == "unconfirmed")
    files = samples(tmp_path)
    files["visits"].write_text(existing_visit_row(visit, "19:00-21:00", "", "unconfirmed"),
                               encoding="utf-8")
    import_samples(base, files)
    stored = by_code(base, m.Visit, visit.code)
    assert [w.starts_at for w in stored.windows] == [datetime(2025, 3, 10, 11, tzinfo=UTC)]


def test_no_file_at_all_is_refused(quick_base: Session) -> None:
    """Calling the import with no file is an error, not an empty success."""
    with pytest.raises(ValidationError):
        import_csv(quick_base)


# ---------------------------------------------------------------------------------------------
# JSON: export, import, round trip
# ---------------------------------------------------------------------------------------------


def test_json_round_trip_into_an_empty_database(base: Session, tmp_path: Path,
                                                sqlite_template: Path) -> None:
    """A day exported, imported into an empty database and exported again is the same JSON."""
    import_samples(base, samples(tmp_path))
    exported = json.loads(json.dumps(export_day(base, DAY), ensure_ascii=False))
    target = tmp_path / "copy.db"
    shutil.copyfile(sqlite_template, target)
    engine = make_engine(f"sqlite:///{target}")
    try:
        with Session(engine) as other:
            import_day_json(other, exported)
            other.commit()
            assert export_day(other, DAY) == exported
    finally:
        engine.dispose()
    assert len(exported["visits"]) == len(TINY.visits) + 3


def test_json_reimport_changes_nothing(base: Session) -> None:
    """Importing a day's own export back into the same database changes no row."""
    report = import_day_json(base, export_day(base, DAY))
    assert report.loaded.total_created == 0 and report.loaded.total_updated == 0


def test_json_export_of_one_outlet(base: Session) -> None:
    """Exporting a named outlet gives that outlet's visits only."""
    data = export_day(base, DAY, ["TY-SN"])
    assert {v["outlet_code"] for v in data["visits"]} == {"TY-SN"}


def json_day(**changes: Any) -> dict[str, Any]:
    """The tiny day's JSON with the first visit's fields changed."""
    data = fixtures.export_json(TINY)
    data["visits"][0].update(changes)
    return data


@pytest.mark.parametrize(("data", "row", "field"), [
    pytest.param(json_day(windows=[["2025-03-10T12:00:00+08:00", "2025-03-10T10:00:00+08:00"]]),
                 "visits[0]", "windows", id="window-reversed"),
    pytest.param(json_day(outlet_code="NOPE"), "visits[0]", "outlet_code", id="unknown-outlet"),
    pytest.param(json_day(duration_minutes="long"), "visits[0]", "duration_minutes",
                 id="not-a-number"),
    pytest.param(json_day(required_skills=[["flying", 1]]), "visits[0]", "required_skills",
                 id="unknown-skill"),
])
def test_bad_json_is_refused_at_its_record(session: Session, data: dict[str, Any], row: str,
                                           field: str) -> None:
    """A bad JSON record is reported at its list index and field; nothing is written."""
    before = counts(session)
    with pytest.raises(DataImportError) as caught:
        import_day_json(session, data, source="day.json")
    assert ("day.json", row, field) in [(e.file, e.row, e.field) for e in caught.value.errors]
    assert counts(session) == before


def test_json_duplicate_codes_are_refused(session: Session) -> None:
    """The same visit code twice in a JSON day is an error at the second one."""
    data = fixtures.export_json(TINY)
    data["visits"].append(dict(data["visits"][0]))
    with pytest.raises(DataImportError) as caught:
        import_day_json(session, data)
    assert (f"visits[{len(TINY.visits)}]", "code") in [(e.row, e.field)
                                                       for e in caught.value.errors]


# ---------------------------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------------------------


def run(db_url: str, *args: str) -> Any:
    """Run ``dispatch --database-url URL ARGS`` and return click's result."""
    return CliRunner().invoke(main, ["--database-url", db_url, *args], catch_exceptions=False)


def test_import_command_refuses_bad_file(base: Session, db_url: str, tmp_path: Path) -> None:
    """A bad file exits non-zero with the file, row and field in the message; nothing written."""
    bad = tmp_path / "customers.csv"
    bad.write_text(CUSTOMERS + "X1,张三,1,路,95,120\n", encoding="utf-8")
    before = counts(base)
    result = run(db_url, "import", "--customers", str(bad))
    assert result.exit_code == 1
    assert "file customers.csv, row 2, field lat" in result.output
    assert "文件 customers.csv，第 2 行，字段 lat" in result.output
    assert counts(base) == before


def test_import_command_imports_the_samples(base: Session, db_url: str, tmp_path: Path) -> None:
    """The sample files import through the command and are committed."""
    files = samples(tmp_path)
    result = run(db_url, "import", "--customers", str(files["customers"]), "--technicians",
                 str(files["technicians"]), "--visits", str(files["visits"]))
    assert result.exit_code == 0, result.output
    assert counts(base)["visits"] == len(TINY.visits) + 3


def test_export_then_import_day_json_commands(base: Session, db_url: str, tmp_path: Path) -> None:
    """`dispatch export --out F` writes the day; `dispatch import --day-json F` reads it back."""
    out = tmp_path / "day.json"
    assert run(db_url, "export", "--date", DAY.isoformat(), "--out", str(out)).exit_code == 0
    assert len(json.loads(out.read_text(encoding="utf-8"))["visits"]) == len(TINY.visits)
    result = run(db_url, "import", "--day-json", str(out))
    assert result.exit_code == 0 and "Nothing changed" in result.output


def test_export_command_refuses_a_bad_date(db_url: str) -> None:
    """A date that is not YYYY-MM-DD exits non-zero naming --date."""
    result = run(db_url, "export", "--date", "10/03/2025")
    assert result.exit_code == 1 and "--date" in result.output


def test_load_command_loads_a_dataset(session: Session, db_url: str) -> None:
    """`dispatch load --dataset tiny` loads the tiny day's visits."""
    result = run(db_url, "load", "--dataset", "tiny", "--date", DAY.isoformat())
    assert result.exit_code == 0, result.output
    assert counts(session)["visits"] == len(TINY.visits)
