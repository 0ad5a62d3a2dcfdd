"""Configuration layering: defaults, the instance file, then DISPATCH_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.config import database_url, load_config
from dispatch.errors import ValidationError


def test_default_database_is_sqlite_in_instance_folder(tmp_path: Path) -> None:
    """Without configuration the database is instance/dispatch.db, and the folder is created."""
    folder = tmp_path / "inst"
    url = database_url(load_config({"DISPATCH_INSTANCE_PATH": str(folder)}))
    assert url == f"sqlite:///{folder / 'dispatch.db'}"
    assert folder.is_dir()


def test_instance_file_overrides_defaults(tmp_path: Path) -> None:
    """dispatch.toml in the instance folder overrides the defaults."""
    (tmp_path / "dispatch.toml").write_text('database_url = "sqlite:///from-file.db"\n')
    config = load_config({"DISPATCH_INSTANCE_PATH": str(tmp_path)})
    assert config["DATABASE_URL"] == "sqlite:///from-file.db"


def test_environment_overrides_instance_file(tmp_path: Path) -> None:
    """A DISPATCH_* variable overrides the instance file."""
    (tmp_path / "dispatch.toml").write_text('database_url = "sqlite:///from-file.db"\n')
    environ = {
        "DISPATCH_INSTANCE_PATH": str(tmp_path),
        "DISPATCH_DATABASE_URL": "postgresql+psycopg://db/prod",
    }
    assert database_url(load_config(environ)) == "postgresql+psycopg://db/prod"


def test_broken_instance_file_names_the_file(tmp_path: Path) -> None:
    """A malformed dispatch.toml raises ValidationError naming the file."""
    (tmp_path / "dispatch.toml").write_text("database_url = \n")
    with pytest.raises(ValidationError) as caught:
        load_config({"DISPATCH_INSTANCE_PATH": str(tmp_path)})
    assert caught.value.file == str(tmp_path / "dispatch.toml")


def test_configuration_is_read_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment is read at call time, not at import time."""
    monkeypatch.setenv("DISPATCH_DATABASE_URL", "sqlite:///late.db")
    assert database_url() == "sqlite:///late.db"
