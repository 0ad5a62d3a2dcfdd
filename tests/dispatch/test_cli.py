"""The `dispatch` command: database maintenance, user creation and error reporting."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dispatch import cli, db
from dispatch import models as m
from dispatch.security import verify_password
from tests.dispatch.builders import build_graph

DOWN_URL = "postgresql+psycopg://postgres@127.0.0.1:1/test"


def run(url: str, *args: str, input: str | None = None) -> Result:
    """Invoke `dispatch --database-url URL ARGS...` in-process."""
    return CliRunner().invoke(cli.main, ["--database-url", url, *args], input=input)


def test_db_upgrade_and_check(blank_db_url: str) -> None:
    """`dispatch db upgrade` migrates a fresh database and `dispatch db check` then passes."""
    upgraded = run(blank_db_url, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "Database upgraded" in upgraded.output and "数据库已升级" in upgraded.output
    checked = run(blank_db_url, "db", "check")
    assert checked.exit_code == 0, checked.output


def test_db_check_fails_on_an_unmigrated_database(blank_db_url: str) -> None:
    """`dispatch db check` exits non-zero when the schema is missing."""
    result = run(blank_db_url, "db", "check")
    assert result.exit_code == 1
    assert "dispatch db upgrade" in result.output and "Traceback" not in result.output


def test_createuser_stores_a_hashed_password(db_url: str, engine: Engine) -> None:
    """`dispatch createuser` adds a user whose password is stored hashed."""
    result = run(db_url, "createuser", "disp1", "--role", "dispatcher", "--password", "password1")
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        user = session.scalar(select(m.User).where(m.User.username == "disp1"))
        assert user is not None and user.role is m.Role.DISPATCHER
        assert user.password_hash != "password1"
        assert verify_password("password1", user.password_hash)


def test_createuser_prompts_for_the_password(db_url: str) -> None:
    """Without --password the command asks for it twice, hidden."""
    result = run(db_url, "createuser", "mgr", "--role", "manager", input="password1\npassword1\n")
    assert result.exit_code == 0, result.output
    assert "password1" not in result.output


def test_createuser_links_a_technician(db_url: str, engine: Engine) -> None:
    """--technician links the account to the technician with that code."""
    with db.session_scope(engine) as session:
        graph = build_graph(session)
        session.delete(graph.user)
    result = run(db_url, "createuser", "t01", "--role", "technician", "--technician", "T01",
                 "--password", "password1")
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        user = session.scalar(select(m.User).where(m.User.username == "t01"))
        assert user is not None and user.technician is not None and user.technician.code == "T01"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["createuser", "x", "--role", "dispatcher", "--password", "short"], "password"),
        (["createuser", "x", "--role", "technician", "--password", "password1"], "--technician"),
        (["createuser", "x", "--role", "technician", "--technician", "T9", "--password",
          "password1"], "T9"),
    ],
)
def test_createuser_errors_are_one_clear_line(
    db_url: str, engine: Engine, args: list[str], fragment: str
) -> None:
    """Bad input exits 1 with one line in Chinese and English, no traceback, nothing written."""
    result = run(db_url, *args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and " / " in lines[0]
    assert "Traceback" not in result.output
    with Session(engine) as session:
        assert session.scalar(select(m.User)) is None


def test_duplicate_username_is_refused(db_url: str) -> None:
    """Creating the same username twice fails the second time."""
    args = ["createuser", "a", "--role", "admin", "--password", "password1"]
    assert run(db_url, *args).exit_code == 0
    again = run(db_url, *args)
    assert again.exit_code == 1 and "already taken" in again.output


def test_database_down_is_a_clear_error() -> None:
    """An unreachable database exits 1 with a one-line message, not a traceback."""
    result = run(DOWN_URL, "db", "upgrade")
    assert result.exit_code == 1
    assert "Cannot reach the database" in result.output and "无法连接数据库" in result.output
    assert "Traceback" not in result.output


def test_lazy_command_is_loaded_on_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command registered by name is listed and imported only when it is run."""
    monkeypatch.setitem(cli.main.lazy_commands, "hello", "tests.dispatch.test_cli:hello_command")
    monkeypatch.delitem(cli.main.commands, "hello", raising=False)
    assert "hello" in CliRunner().invoke(cli.main, ["--help"]).output
    result = CliRunner().invoke(cli.main, ["hello"])
    assert result.exit_code == 0 and result.output == "hello\n"
    cli.main.commands.pop("hello", None)


@click.command()
def hello_command() -> None:
    """Print hello (a stand-in for another module's command)."""
    click.echo("hello")
