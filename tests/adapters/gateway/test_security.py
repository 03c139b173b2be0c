"""The gateway's key: where it comes from, how it is checked, where the gateway may listen."""

from __future__ import annotations

from pathlib import Path

import pytest

from freegin_ai.adapters.errors import ConfigError
from freegin_ai.adapters.gateway.security import (
    KEY_ENV,
    BearerCheck,
    check_listen_address,
    is_loopback,
    load_api_key,
)


def test_the_key_file_wins_over_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    assert load_api_key({KEY_ENV: "from-env"}, key_file) == "from-file"
    assert load_api_key({KEY_ENV: " from-env "}, None) == "from-env"
    assert load_api_key({}, None) is None


@pytest.mark.parametrize("content", ["", "\n\n", "two words", "caf\u00e9"])
def test_an_empty_or_unusable_key_file_is_refused(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content)
    with pytest.raises(ConfigError):
        load_api_key({}, key_file)
    with pytest.raises(ConfigError, match="cannot read"):
        load_api_key({}, tmp_path / "missing")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.4", False),
        ("example.org", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    if loopback:
        check_listen_address(host, None)
    else:
        with pytest.raises(ConfigError, match="refusing to listen"):
            check_listen_address(host, None)
        check_listen_address(host, "a-key")


def test_only_the_exact_bearer_key_is_allowed() -> None:
    check = BearerCheck("s3cret-key")
    assert check.allows(b"Bearer s3cret-key")
    assert check.allows(b"bearer s3cret-key")
    for wrong in (
        None,
        b"",
        b"s3cret-key",
        b"Basic s3cret-key",
        b"Bearer s3cret",
        b"Bearer s3cret-key2",
    ):
        assert not check.allows(wrong)
    assert "s3cret" not in repr(check)
