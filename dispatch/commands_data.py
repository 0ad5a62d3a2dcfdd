"""``dispatch import``, ``dispatch export`` and ``dispatch load``: data in and out of the database.

Each command runs in one transaction: on any error it prints one clear message, exits non-zero
and writes nothing.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

import fixtures
from dispatch import db
from dispatch.cli import database_url_option
from dispatch.errors import ValidationError

EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def parse_day(value: str, option: str = "--date") -> date:
    """Return the date of "YYYY-MM-DD" or "today" (in the configured zone)."""
    if value.strip().lower() == "today":
        from dispatch.demo import today

        return today()
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not a date YYYY-MM-DD (or 'today')",
                              f"{value!r} 不是日期 YYYY-MM-DD（或 today）", field=option) from exc


@click.command("import")
@click.option("--customers", type=EXISTING_FILE, help="客户 CSV 文件 / Customers CSV file.")
@click.option("--technicians", type=EXISTING_FILE, help="技师 CSV 文件 / Technicians CSV file.")
@click.option("--visits", type=EXISTING_FILE, help="上门服务 CSV 文件 / Visits CSV file.")
@click.option("--day-json", type=EXISTING_FILE,
              help="一天数据的 JSON 导出文件 / JSON export of a day.")
@click.pass_context
def import_command(ctx: click.Context, customers: Path | None, technicians: Path | None,
                   visits: Path | None, day_json: Path | None) -> None:
    """导入 CSV 或 JSON 数据（全部成功或全部不写入）/ Import CSV or JSON data, all or nothing."""
    from dispatch.geocoding import geocoder_from_config
    from dispatch.importer import import_csv, import_day_json

    if not any((customers, technicians, visits, day_json)):
        raise ValidationError(
            "give --customers, --technicians, --visits and/or --day-json",
            "请指定 --customers、--technicians、--visits 或 --day-json",
            field="--customers/--technicians/--visits/--day-json")
    data = _read_json(day_json) if day_json else None
    csv_given = any((customers, technicians, visits))
    geocoder = geocoder_from_config() if csv_given else None
    engine = db.make_engine(database_url_option(ctx))
    try:
        with db.session_scope(engine) as session:
            # JSON first: CSV rows may refer to the outlets and skills a day export brings.
            if data is not None and day_json is not None:
                click.echo("\n".join(import_day_json(session, data, source=day_json.name).lines()))
            if csv_given:
                report = import_csv(session, customers=customers, technicians=technicians,
                                    visits=visits, geocoder=geocoder)
                click.echo("\n".join(report.lines()))
    finally:
        engine.dispose()


@click.command("export")
@click.option("--date", "day_text", required=True, metavar="YYYY-MM-DD",
              help="日期（或 today）/ The day (or 'today').")
@click.option("--outlet", "outlets", multiple=True, metavar="CODE",
              help="网点编号，可重复；默认全部 / Outlet code, repeatable; default all.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="写入此文件（默认输出到屏幕）/ Write here (default: print it).")
@click.pass_context
def export_command(ctx: click.Context, day_text: str, outlets: tuple[str, ...],
                   out_file: Path | None) -> None:
    """导出一天的数据为 JSON / Export a day as JSON."""
    from dispatch.importer import export_day

    day = parse_day(day_text)
    engine = db.make_engine(database_url_option(ctx))
    try:
        with db.session_scope(engine) as session:
            data = export_day(session, day, list(outlets) or None)
    finally:
        engine.dispose()
    text = json.dumps(data, ensure_ascii=False, indent=1)
    if out_file is None:
        click.echo(text)
        return
    out_file.write_text(text + "\n", encoding="utf-8")
    click.echo(f"已写入 {out_file}：{len(data['visits'])} 个上门服务 / "
               f"Wrote {out_file}: {len(data['visits'])} visit(s)")


@click.command("load")
@click.option("--dataset", required=True, type=click.Choice(fixtures.DATASETS),
              help="数据集 / Dataset.")
@click.option("--date", "day_text", default="today", show_default=True, metavar="YYYY-MM-DD",
              help="日期 / Day.")
@click.option("--seed", type=int, default=0, show_default=True, help="随机种子 / Random seed.")
@click.pass_context
def load_command(ctx: click.Context, dataset: str, day_text: str, seed: int) -> None:
    """载入示例数据集（不做规划）/ Load a sample dataset (no planning)."""
    from dispatch.loader import load_dataset

    day = parse_day(day_text)
    engine = db.make_engine(database_url_option(ctx))
    try:
        with db.session_scope(engine) as session:
            report = load_dataset(session, fixtures.generate(dataset, day, seed))
    finally:
        engine.dispose()
    click.echo(f"已载入 {dataset}（{day.isoformat()}）/ Loaded {dataset} ({day.isoformat()})")
    click.echo(report.summary())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValidationError("the file is not UTF-8 text", "文件不是 UTF-8 编码",
                              file=path.name) from exc
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc.msg} (column {exc.colno})",
                              f"不是有效的 JSON：{exc.msg}（第 {exc.colno} 列）",
                              file=path.name, row=exc.lineno) from exc
