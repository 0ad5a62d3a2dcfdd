"""``dispatch script`` prints a call script; ``dispatch notify`` runs one delivery pass."""

from __future__ import annotations

import click
from sqlalchemy import select

from dispatch import config, db
from dispatch.cli import database_url_option
from dispatch.errors import NotFoundError
from dispatch.models import Language, Visit, utcnow
from dispatch.scripts import SCRIPT_KINDS


@click.command("script")
@click.argument("visit_code")
@click.option("--kind", type=click.Choice(SCRIPT_KINDS), default="confirmation",
              show_default=True, help="话术类型 / Kind of script.")
@click.option("--lang", type=click.Choice([language.value for language in Language]),
              default=None, help="语言（默认客户的语言）/ Language (default: the customer's).")
@click.pass_context
def script_command(ctx: click.Context, visit_code: str, kind: str, lang: str | None) -> None:
    """打印上门服务的通话话术 / Print the call script of a visit."""
    from dispatch.scripts import render_script

    engine = db.make_engine(database_url_option(ctx))
    try:
        with db.session_scope(engine) as session:
            visit = session.scalar(select(Visit).where(Visit.code == visit_code))
            if visit is None:
                raise NotFoundError("visit", visit_code, "上门服务")
            script = render_script(session, visit, kind, lang, now=utcnow())
            click.echo(f"# {script.title}\n{script.text}")
    finally:
        engine.dispose()


@click.command("notify")
@click.pass_context
def notify_command(ctx: click.Context) -> None:
    """投递一轮待发通知 / Run one delivery pass of pending notifications."""
    from dispatch.notify import deliver_pending

    engine = db.make_engine(database_url_option(ctx))
    try:
        report = deliver_pending(db.session_factory(engine), now=utcnow(),
                                 config=config.load_config())
    finally:
        engine.dispose()
    c = report.counts()
    click.echo(f"已发送 {c['sent']}，待重试 {c['retry']}，失败 {c['failed']}，"
               f"已过期 {c['expired']}，等待通话时段 {c['waiting']}，跳过 {c['skipped']}\n"
               f"sent {c['sent']}, retry {c['retry']}, failed {c['failed']}, "
               f"expired {c['expired']}, waiting for calling hours {c['waiting']}, "
               f"skipped {c['skipped']}")
