"""The ``dispatch`` console command: dispatch's commands plus the ones that serve the web app.

It lives in ``web`` because serving needs Flask, and ``dispatch`` never imports Flask.
"""

from __future__ import annotations

import click

from dispatch.cli import database_url_option, main

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000


@main.command("serve")
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """启动网页服务 / Serve the web app (threaded; fine for a demo or a small outlet)."""
    _serve(database_url_option(ctx), host, port)


@main.command("demo")
@click.option("--dataset", default="qingdao", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the data and stop.")
@click.pass_context
def demo(ctx: click.Context, dataset: str, seed: int, host: str, port: int, no_serve: bool) -> None:
    """准备演示并启动 / Create the database, load today's demo city, plan it, serve it."""
    from dispatch.demo import format_logins, prepare_demo

    url = database_url_option(ctx)
    info = prepare_demo(url, dataset=dataset, seed=seed)
    click.echo(format_logins(info))
    if not no_serve:
        click.echo(f"\n演示已就绪 / The demo is ready: http://{host}:{port}/\n")
        _serve(url, host, port)


def _serve(database_url: str, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    from web import create_app

    app = create_app({"DATABASE_URL": database_url})
    run_simple(host, port, app, threaded=True, use_reloader=False)
