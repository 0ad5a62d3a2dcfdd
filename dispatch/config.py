"""Configuration: defaults, then the instance folder, then ``DISPATCH_*`` environment variables.

Nothing here runs at import time; callers ask for the configuration when they need it, so tests
and commands can change the environment first.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dispatch.errors import ValidationError

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "DISPATCH_"
CONFIG_FILE_NAME = "dispatch.toml"

# Keys are upper case, as Flask expects; values from the environment are strings.
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: a SQLite file in the instance folder
    "DEFAULT_TIMEZONE": "Asia/Shanghai",
    "DEFAULT_LANGUAGE": "zh",
}


def instance_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return the instance folder: DISPATCH_INSTANCE_PATH, or ``<repo>/instance``."""
    env = os.environ if environ is None else environ
    configured = env.get(f"{ENV_PREFIX}INSTANCE_PATH")
    return Path(configured) if configured else REPO_ROOT / "instance"


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the merged config: defaults < instance/dispatch.toml < DISPATCH_* variables."""
    env = os.environ if environ is None else environ
    folder = instance_path(env)
    config = dict(DEFAULTS)
    config["INSTANCE_PATH"] = str(folder)
    config.update(_read_toml(folder / CONFIG_FILE_NAME))
    config.update(_read_environment(env))
    return config


def database_url(config: Mapping[str, Any] | None = None) -> str:
    """Return the configured database URL, defaulting to ``sqlite:///<instance>/dispatch.db``.

    The instance folder is created when the default SQLite file is used.
    """
    merged = load_config() if config is None else config
    url = merged.get("DATABASE_URL")
    if url:
        return str(url)
    folder = Path(str(merged.get("INSTANCE_PATH") or instance_path()))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'dispatch.db'}"


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(
            f"the configuration file is not valid TOML: {exc}",
            f"配置文件不是有效的 TOML：{exc}",
            file=str(path),
        ) from exc
    return {key.upper(): value for key, value in data.items()}


def _read_environment(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        key[len(ENV_PREFIX):]: value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX)
    }
