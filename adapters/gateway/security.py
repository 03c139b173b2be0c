"""Who may call the gateway: the API key, where it comes from, and where it may listen.

The key comes from a key file (`--api-key-file`) or `FREEGIN_SERVE_API_KEY`; with it, every
endpoint but `/healthz` needs `Authorization: Bearer <key>`, compared in constant time (both
sides hashed first, so not even the length leaks). Without a key the gateway listens only on
a loopback address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from pathlib import Path

from freegin_ai.adapters.errors import ConfigError

KEY_ENV = "FREEGIN_SERVE_API_KEY"


def load_api_key(env: Mapping[str, str], key_file: Path | None) -> str | None:
    """The gateway's key: the key file's first line, else the environment, else None."""
    if key_file is not None:
        try:
            text = key_file.expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise ConfigError(f"cannot read the API key file {key_file}: {reason}") from None
        lines = text.strip().splitlines()
        key = lines[0].strip() if lines else ""
        if not key:
            raise ConfigError(f"the API key file {key_file} is empty")
        return _checked(key, str(key_file))
    value = env.get(KEY_ENV, "").strip()
    return _checked(value, KEY_ENV) if value else None


def _checked(key: str, where: str) -> str:
    if not key.isascii() or not key.isprintable() or " " in key:
        raise ConfigError(f"the API key in {where} must be printable ASCII without spaces")
    return key


def is_loopback(host: str) -> bool:
    """Whether a listening address is only reachable from this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def check_listen_address(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond loopback without a key."""
    if api_key is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without an API key: set {KEY_ENV} or give "
            "--api-key-file (or listen on 127.0.0.1)"
        )


class BearerCheck:
    """Checks `Authorization` header values against the key in constant time."""

    def __init__(self, api_key: str) -> None:
        self._digest = hashlib.sha256(api_key.encode()).digest()

    def __repr__(self) -> str:
        return "BearerCheck(<key>)"

    def allows(self, authorization: bytes | None) -> bool:
        if not authorization:
            return False
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        offered = hashlib.sha256(token.strip()).digest()
        return hmac.compare_digest(offered, self._digest)
