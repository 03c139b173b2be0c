"""Where data lives: the database URL from FREEGIN_DATABASE_URL, else `app.db` in the data
directory (FREEGIN_DATA_DIR, else the user data directory, ~/.local/share/freegin-ai)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from platformdirs import user_data_dir

from freegin_ai.adapters.errors import ConfigError

APP_NAME = "freegin-ai"
DATABASE_FILE = "app.db"


def data_dir(env: Mapping[str, str]) -> Path:
    """The data directory (not created here)."""
    override = env.get("FREEGIN_DATA_DIR")
    return Path(override).expanduser() if override else Path(user_data_dir(APP_NAME))


def database_url(env: Mapping[str, str]) -> str:
    """The SQLAlchemy URL of the database; creates the data directory for the SQLite default."""
    url = env.get("FREEGIN_DATABASE_URL", "").strip()
    if url:
        if "://" not in url:
            raise ConfigError(
                "FREEGIN_DATABASE_URL must be a SQLAlchemy URL such as "
                "sqlite:////path/app.db or postgresql+psycopg://user@host/db"
            )
        return url
    directory = data_dir(env)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create data directory {directory}: {error.strerror}") from None
    return f"sqlite:///{directory / DATABASE_FILE}"


def usage_fsync(env: Mapping[str, str]) -> bool:
    """FREEGIN_USAGE_FSYNC=1: every usage commit waits for the disk (survives power loss)."""
    value = env.get("FREEGIN_USAGE_FSYNC", "").strip().lower()
    if value in ("", "0", "no", "false", "off"):
        return False
    if value in ("1", "yes", "true", "on"):
        return True
    raise ConfigError(f"FREEGIN_USAGE_FSYNC must be 1 or 0, not {value!r}")
