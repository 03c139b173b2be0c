"""One scrubber for secrets: a key leaves the process in no form a provider could echo it in,
raw, JSON-escaped, URL-encoded or base64; over real HTTP and into the database too."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from freegin_ai.adapters.providers.errors_mapping import REDACTED, scrub, secret_forms
from tests.fakes.provider_server import FakeProviderServer, Status

KEY = "gsk-a/b+c=d-SECRET-1357"
#: Keys travel in HTTP headers (ASCII), but a scrubber must not care.
UNICODE_KEY = "gsk-a/b+c=d\u00e9-SECRET-1357"


def echoes(key: str) -> dict[str, str]:
    """Each way a provider might echo a key back."""
    raw = key.encode()
    return {
        "raw": key,
        "json": json.dumps(key)[1:-1],
        "json-slash": json.dumps(key)[1:-1].replace("/", "\\/"),
        "json-utf8": json.dumps(key, ensure_ascii=False)[1:-1].replace("/", "\\/"),
        "url": quote(key, safe=""),
        "url-lower": quote(key, safe="").replace("%2F", "%2f").replace("%2B", "%2b"),
        "url-plus": quote_plus(key),
        "base64": base64.b64encode(raw).decode(),
        "base64-unpadded": base64.b64encode(raw).decode().rstrip("="),
        "base64-url": base64.urlsafe_b64encode(raw).decode(),
    }


@pytest.mark.parametrize("key", [KEY, UNICODE_KEY], ids=["ascii", "unicode"])
@pytest.mark.parametrize("form", sorted(echoes(KEY)))
def test_every_echoed_form_is_scrubbed(form: str, key: str) -> None:
    echoed = echoes(key)[form]
    text = f"invalid api key: {echoed} (check it)"

    scrubbed = scrub(text, [key, "another-key-0000"])

    assert echoed not in scrubbed
    assert REDACTED in scrubbed
    assert scrubbed.startswith("invalid api key: ")


def test_forms_are_longest_first_and_never_tiny() -> None:
    forms = secret_forms("abc/defghij")
    assert list(forms) == sorted(forms, key=len, reverse=True)
    assert all(len(f) >= 8 for f in forms)
    assert scrub("plain words stay", ["abc/defghij"]) == "plain words stay"


SCRIPT = Path(sys.executable).parent / "freegin-ai"


@pytest.mark.parametrize("form", ["json-slash", "url", "base64"])
def test_a_key_echoed_by_a_provider_reaches_neither_stderr_nor_the_database(
    tmp_path: Path, database_url: str, form: str
) -> None:
    import sqlalchemy

    echoed = echoes(KEY)[form]
    # Not the usual {"error": {"message": ...}} shape: the raw body is what gets shown.
    body = ('{"detail": "Invalid API key ' + echoed + '"}').encode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env |= {
        "FREEGIN_DATA_DIR": str(tmp_path),
        "FREEGIN_CONFIG_DIR": str(tmp_path / "config"),
        "FREEGIN_DATABASE_URL": database_url,
        "GROQ_API_KEY": KEY,
    }
    with FakeProviderServer() as fake:
        fake.script("g-1", Status(401, raw=body))
        env["FREEGIN_GROQ_BASE_URL"] = fake.openai_url

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
            )

        assert cli("adopt-model", "groq", "g-1", "--priority", "1").returncode == 0
        result = cli("generate", "--provider", "groq", "--prompt", "hi", "--verbose")
        status = cli("status", "--json")

    assert result.returncode == 1
    assert "Invalid API key [redacted]" in result.stderr
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as conn:
            stored = " ".join(
                str(value)
                for table in ("provider_usage", "model_health")
                for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
                for value in row
            )
    finally:
        engine.dispose()
    assert "[redacted]" in stored
    for text in (result.stdout, result.stderr, status.stdout, status.stderr, stored):
        for leaked in echoes(KEY).values():
            assert leaked not in text
