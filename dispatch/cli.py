"""The ``dispatch`` command: one entry point for every operation.

Command groups of other modules are registered in ``LAZY_COMMANDS`` (one line each) and imported
only when used, so ``dispatch --help`` stays fast and a broken optional module cannot break the
database commands.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from dispatch import config, db
from dispatch.errors import DispatchError
from dispatch.models import Language, Role

# name -> "module:attribute" of a click command or group. Add a module with one line, e.g.
#     "import": "dispatch.commands_import:import_command",
LAZY_COMMANDS: dict[str, str] = {
    "import": "dispatch.commands_data:import_command",
    "export": "dispatch.commands_data:export_command",
    "load": "dispatch.commands_data:load_command",
    "plan": "dispatch.commands_plan:plan_command",
    "solve": "dispatch.commands_solve:solve_command",
    "tasks": "dispatch.commands_rules:tasks_command",
    "escalate": "dispatch.commands_rules:escalate_command",
    "script": "dispatch.commands_messages:script_command",
    "notify": "dispatch.commands_messages:notify_command",
    "reoptimize": "dispatch.commands_reopt:reoptimize_command",
    "scheduler": "dispatch.commands_reopt:scheduler_command",
    "worker": "dispatch.fanout:worker_command",
    "simulate": "dispatch.simulate:simulate_command",
}


class DispatchGroup(click.Group):
    """A click group that loads commands lazily and prints DispatchError as one clear line."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands if lazy_commands is not None else {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return eager and lazy command names, sorted."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the command ``cmd_name``, importing its module on first use."""
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module_name, attribute = self.lazy_commands[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a DispatchError becomes a one-line message and exit status 1."""
        try:
            return super().invoke(ctx)
        except DispatchError as exc:
            raise click.ClickException(exc.bilingual()) from exc


@click.group(cls=DispatchGroup, lazy_commands=LAZY_COMMANDS)
@click.option(
    "--database-url",
    metavar="URL",
    help="数据库地址（默认取配置）/ Database URL (default: from configuration).",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """售后派工调度 / After-sales field-service dispatch."""
    ctx.obj = {"database_url": database_url}


def database_url_option(ctx: click.Context) -> str:
    """Return the database URL given on the command line, or the configured one."""
    url = (ctx.find_root().obj or {}).get("database_url")
    return url or config.database_url()


@main.group("db")
def db_group() -> None:
    """数据库维护 / Database maintenance."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="目标版本 / Target revision.")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """应用数据库迁移 / Apply database migrations."""
    db.upgrade(database_url_option(ctx), revision)
    click.echo(f"数据库已升级到 {revision} / Database upgraded to {revision}")


@db_group.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """检查数据库结构与模型是否一致 / Check the schema matches the models."""
    db.check(database_url_option(ctx))
    click.echo("数据库结构与模型一致 / The schema matches the models")


@main.command("createuser")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice([role.value for role in Role]),
    help="角色 / Role.",
)
@click.option("--technician", "technician_code", metavar="CODE", help="技师编号 / Technician code.")
@click.option("--outlet", "outlet_code", metavar="CODE", help="网点编号 / Outlet code.")
@click.option(
    "--language",
    type=click.Choice([language.value for language in Language]),
    default=Language.ZH.value,
    show_default=True,
    help="界面语言 / Interface language.",
)
@click.option(
    "--password",
    prompt="密码 / Password",
    hide_input=True,
    confirmation_prompt=True,
    help="密码（省略则提示输入）/ Password (prompted when omitted).",
)
@click.pass_context
def createuser(
    ctx: click.Context,
    username: str,
    role: str,
    technician_code: str | None,
    outlet_code: str | None,
    language: str,
    password: str,
) -> None:
    """创建用户 / Create a user."""
    # Imported here: hashing is only needed by this command.
    from dispatch.security import create_user

    engine = db.make_engine(database_url_option(ctx))
    try:
        with db.session_scope(engine) as session:
            create_user(
                session,
                username,
                role,
                password,
                technician_code=technician_code,
                outlet_code=outlet_code,
                language=language,
            )
    finally:
        engine.dispose()
    click.echo(f"已创建用户 {username}（{role}）/ Created user {username} ({role})")


if __name__ == "__main__":
    main()
