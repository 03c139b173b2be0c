"""The credential store: API keys in `credentials.json` in the config dir, outside the event log.

The file is created with mode 0600 in a directory created with mode 0700. A change reads,
changes and writes the store under an exclusive lock on `.credentials.json.lock` beside it, so
concurrent `add-service` / `remove-service` runs never lose each other's keys; the new content
goes to a fresh 0600 temporary file that is fsynced, renamed over the old one and the directory
fsynced, so a crash never leaves a half-written store, and a store found with looser
permissions is tightened on the next write. Readers need no lock: they see the old file or the
new one, whole.
Keys never appear in repr() or in error messages. Provider names are stored canonically
(`gemini` is kept as `google`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from freegin_ai.adapters.config import config_dir
from freegin_ai.adapters.errors import CredentialError
from freegin_ai.adapters.file_lock import exclusive_lock
from freegin_ai.domain.errors import UnknownProviderError
from freegin_ai.domain.providers import parse_provider

CREDENTIALS_FILE = "credentials.json"
_FORMAT_VERSION = 1


def default_credentials_path(env: Mapping[str, str]) -> Path:
    """`credentials.json` in the config dir (FREEGIN_CONFIG_DIR, or the platform's)."""
    return config_dir(env) / CREDENTIALS_FILE


class CredentialStore:
    """API keys by canonical provider name, kept in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"CredentialStore(path={str(self.path)!r})"

    def get(self, provider: str, /) -> str | None:
        """The stored key for a provider, or None."""
        return self._read().get(_canonical(provider))

    def set(self, provider: str, key: str) -> None:
        """Store (or replace) the key for a provider."""
        name = _canonical(provider)
        key = key.strip()
        problem = key_problem(key)
        if problem is not None:
            raise CredentialError(f"{name}: {problem}")
        with self._locked():
            keys = self._read()
            keys[name] = key
            self._write(keys)

    def remove(self, provider: str) -> bool:
        """Forget a provider's key; False when there was none."""
        name = _canonical(provider)
        with self._locked():
            keys = self._read()
            if name not in keys:
                return False
            del keys[name]
            self._write(keys)
        return True

    def exposure(self) -> str | None:
        """A warning when the file can be read by group or others (a key anyone can copy),
        else None. Keys are still used: refusing would stop every call over a chmod."""
        try:
            mode = self.path.stat().st_mode
        except OSError:
            return None
        if not mode & 0o077:
            return None
        who = " and ".join(w for w, bits in (("group", 0o070), ("others", 0o007)) if mode & bits)
        return (
            f"{self.path} is open to {who} (mode {stat.S_IMODE(mode):04o}); "
            f"run `chmod 600 {self.path}`"
        )

    def providers(self) -> list[str]:
        """The providers with a stored key, sorted."""
        return sorted(self._read())

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold the store's lock file (created 0600) for a read-change-write."""
        directory = self.path.parent

        def failed(exc: OSError) -> CredentialError:
            return CredentialError(f"{directory}: cannot lock the store ({_reason(exc)})")

        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise failed(exc) from None
        return exclusive_lock(directory / f".{self.path.name}.lock", failed)

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CredentialError(f"{self.path}: cannot read ({_reason(exc)})") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise CredentialError(f"{self.path}: not a valid credential file (bad JSON)") from None
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, dict) or not all(
            isinstance(name, str) and isinstance(value, str) for name, value in keys.items()
        ):
            raise CredentialError(f"{self.path}: not a valid credential file (no keys table)")
        return dict(keys)

    def _write(self, keys: dict[str, str]) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise CredentialError(f"{directory}: cannot create ({_reason(exc)})") from None
        content = json.dumps({"version": _FORMAT_VERSION, "keys": dict(sorted(keys.items()))})
        temp = directory / f".{self.path.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                if hasattr(os, "fchmod"):
                    os.fchmod(file.fileno(), 0o600)  # exactly 0600, whatever the umask
                file.write((content + "\n").encode("utf-8"))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
            _fsync_directory(directory)  # the rename itself reaches the disk
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise CredentialError(f"{self.path}: cannot write ({_reason(exc)})") from None


def key_problem(key: str) -> str | None:
    """Why a key cannot be stored (it goes into an HTTP header), or None."""
    if not key:
        return "the key is empty"
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        return "the key contains spaces or control characters"
    if not key.isascii():
        return "the key is not ASCII (keys travel in HTTP headers)"
    return None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _canonical(provider: str) -> str:
    try:
        return parse_provider(provider)
    except UnknownProviderError:
        raise CredentialError(f"unknown provider {provider!r}") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
