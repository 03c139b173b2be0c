"""CredentialStore: round trip, 0600 file in a 0700 directory, atomic rewrite under a lock
(eight concurrent writer processes lose nothing), no key in errors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from freegin_ai.adapters.credentials import CredentialStore, default_credentials_path
from freegin_ai.adapters.errors import CredentialError

KEY = "gsk_SECRET_0123456789abcdef"

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def store_in(tmp_path: Path) -> CredentialStore:
    return CredentialStore(tmp_path / "conf" / "credentials.json")


def test_round_trip(tmp_path: Path) -> None:
    store = store_in(tmp_path)

    store.set("groq", KEY)
    store.set("gemini", "  AIza-key  ")  # an alias, with the whitespace of a paste

    reopened = store_in(tmp_path)
    assert reopened.get("groq") == KEY
    assert reopened.get("google") == "AIza-key"
    assert reopened.get("GEMINI") == "AIza-key"
    assert reopened.get("deepseek") is None
    assert reopened.providers() == ["google", "groq"]


def test_set_replaces(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    store.set("groq", "old-key")

    store.set("groq", KEY)

    assert store.get("groq") == KEY


def test_remove(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    store.set("groq", KEY)
    store.set("deepseek", "sk-other")

    assert store.remove("groq") is True
    assert store.remove("groq") is False
    assert store.get("groq") is None
    assert store.providers() == ["deepseek"]


def test_empty_store(tmp_path: Path) -> None:
    store = store_in(tmp_path)

    assert store.providers() == []
    assert store.get("groq") is None
    assert store.remove("groq") is False
    assert not store.path.exists()


@posix_only
def test_file_is_0600_in_a_0700_directory(tmp_path: Path) -> None:
    store = store_in(tmp_path)

    store.set("groq", KEY)

    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700
    # No temporary file left, only the lock file beside the store (0600 as well).
    names = sorted(p.name for p in store.path.parent.iterdir())
    assert names == [".credentials.json.lock", "credentials.json"]
    assert mode(store.path.parent / ".credentials.json.lock") == 0o600


@posix_only
def test_loose_permissions_are_tightened_on_write(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    store.set("groq", KEY)
    os.chmod(store.path, 0o644)

    store.set("deepseek", "sk-other")

    assert mode(store.path) == 0o600
    assert store.get("groq") == KEY


@posix_only
def test_permissions_hold_under_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        store_in(tmp_path).set("groq", KEY)
    finally:
        os.umask(previous)

    assert mode(store_in(tmp_path).path) == 0o600


def test_keys_never_in_repr(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    store.set("groq", KEY)

    assert KEY not in repr(store)


@pytest.mark.parametrize("bad", ["", "   ", "two words", "line\nbreak", "tab\there"])
def test_unusable_keys_are_refused_without_echo(tmp_path: Path, bad: str) -> None:
    store = store_in(tmp_path)

    with pytest.raises(CredentialError) as caught:
        store.set("groq", bad)

    if bad.strip():
        assert bad not in str(caught.value)
    assert not store.path.exists()


def test_unknown_provider(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="nosuch"):
        store_in(tmp_path).set("nosuch", KEY)


@pytest.mark.parametrize(
    "content",
    [f'{{"keys": {{"groq": "{KEY}"', f'["{KEY}"]', f'{{"keys": {{"groq": 1, "x": "{KEY}"}}}}'],
)
def test_corrupt_file_error_does_not_show_its_content(tmp_path: Path, content: str) -> None:
    store = store_in(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content, encoding="utf-8")

    with pytest.raises(CredentialError) as caught:
        store.get("groq")

    assert str(store.path) in str(caught.value)
    assert KEY not in str(caught.value)


def test_default_path_is_in_the_config_dir(tmp_path: Path) -> None:
    path = default_credentials_path({"FREEGIN_CONFIG_DIR": str(tmp_path)})

    assert path == tmp_path / "credentials.json"


WRITER = """
import sys
from pathlib import Path
from freegin_ai.adapters.credentials import CredentialStore
store = CredentialStore(Path(sys.argv[1]))
provider = sys.argv[2]
for i in range(40):
    store.set(provider, f"key-{provider}-{i}")
    assert store.get(provider) == f"key-{provider}-{i}", "a key was lost"
    if i % 3 == 0:
        store.remove(provider)
store.set(provider, f"final-{provider}")
"""


def test_eight_concurrent_writer_processes_lose_no_key(tmp_path: Path) -> None:
    # Given a store another provider's key is already in
    path = tmp_path / "config" / "credentials.json"
    CredentialStore(path).set("mistral", "kept-key")
    providers = ["huggingface", "google", "groq", "deepseek", "openrouter", "openai",
                 "anthropic", "cerebras"]  # fmt: skip
    # When eight processes set, check and remove their own provider's key 40 times at once
    children = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), p], stderr=subprocess.PIPE)
        for p in providers
    ]
    errors = []
    for child in children:
        _, err = child.communicate(timeout=120)
        if child.returncode != 0:
            errors.append(err.decode()[-300:])
    # Then no process saw its key vanish, and every key is there, whole, in a 0600 file
    assert errors == []
    store = CredentialStore(path)
    assert {p: store.get(p) for p in providers} == {p: f"final-{p}" for p in providers}
    assert store.get("mistral") == "kept-key"
    assert mode(path) == 0o600
    assert sorted(q.name for q in path.parent.iterdir()) == [
        ".credentials.json.lock",
        "credentials.json",
    ]  # no temporary file left behind
