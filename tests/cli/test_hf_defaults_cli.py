"""The guide's six Hugging Face defaults answer `generate` and pass `smoke` for their
workloads, through the real console script, against a fake that speaks both the chat router
and the hf-inference task API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.provider_server import FakeProviderServer, Reply

SCRIPT = Path(sys.executable).parent / "freegin-ai"
KEY = "hf_cli_SECRET_0123456789"


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        # What each default answers, in the wire format its API speaks.
        server.tasks |= {
            "bigcode/starcoder": "text-generation",
            "facebook/bart-large-cnn": "summarization",
            "tiiuae/falcon-7b-instruct": "text-generation",
            "facebook/bart-large-mnli": "zero-shot-classification",
        }
        server.script(
            "mistralai/Mistral-7B-Instruct-v0.2",
            Reply("Hello there! The lighthouse keeps its lonely watch over the sea."),
        )
        server.script(
            "bigcode/starcoder", Reply("```python\ndef add(a, b):\n    return a + b\n```")
        )
        server.script("facebook/bart-large-cnn", Reply("The council approved new bicycle lanes."))
        server.script(
            "tiiuae/falcon-7b-instruct",
            Reply('{"name": "Ada Moreno", "city": "Lisbon", "year": 1998}'),
        )
        server.script("facebook/bart-large-mnli", Reply("negative"))
        yield server


def console(tmp: Path, extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script in a temp data dir, with no key from the outer environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    for name in list(env):
        if name.endswith(("_API_KEY", "_TOKEN")):
            del env[name]
    env |= {"FREEGIN_DATA_DIR": str(tmp), "FREEGIN_CONFIG_DIR": str(tmp / "config"), **extra}
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def run(tmp: Path, fake: FakeProviderServer, *args: str) -> subprocess.CompletedProcess[str]:
    return console(tmp, {"FREEGIN_HUGGINGFACE_BASE_URL": fake.openai_url, "HF_TOKEN": KEY}, *args)


TASK = "/hf-inference/models/"
CHAT = "/v1/chat/completions"


@pytest.mark.parametrize(
    ("workload", "model", "path"),
    [
        ("chat", "mistralai/Mistral-7B-Instruct-v0.2", CHAT),
        ("code", "bigcode/starcoder", TASK + "bigcode/starcoder"),
        ("summarization", "facebook/bart-large-cnn", TASK + "facebook/bart-large-cnn"),
        ("extraction", "tiiuae/falcon-7b-instruct", TASK + "tiiuae/falcon-7b-instruct"),
        ("creative", "mistralai/Mistral-7B-Instruct-v0.2", CHAT),
        ("classification", "facebook/bart-large-mnli", TASK + "facebook/bart-large-mnli"),
    ],
)
def test_each_default_passes_smoke_through_the_api_its_pipeline_needs(
    tmp_path: Path, fake: FakeProviderServer, workload: str, model: str, path: str
) -> None:
    result = run(tmp_path, fake, "smoke", "--provider", "huggingface", "--workload", workload)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{model}: PASS" in result.stdout
    [sent] = [r for r in fake.requests if r.method == "POST"]
    assert sent.path == path
    if workload == "classification":
        # The smoke case's labels, and the review alone (no instruction) as the input.
        assert sent.body["parameters"]["candidate_labels"] == ["positive", "negative", "neutral"]
        assert sent.body["inputs"].startswith("The battery died")
    if workload == "summarization":
        assert sent.body["inputs"].startswith("The city council met")


def test_generate_classifies_with_labels_and_skips_zero_shot_without(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    args = ("generate", "--provider", "huggingface", "--workload", "classification")
    labelled = run(
        tmp_path, fake, *args, "--prompt", "Support never answered.", "--labels",
        "positive, negative,neutral", "--format", "json",
    )  # fmt: skip
    assert labelled.returncode == 0, labelled.stderr
    payload = json.loads(labelled.stdout)
    assert (payload["text"], payload["model"]) == ("negative", "facebook/bart-large-mnli")
    assert fake.last_request().body == {
        "inputs": "Support never answered.",
        "parameters": {"candidate_labels": ["positive", "negative", "neutral"],
                       "multi_label": False},
    }  # fmt: skip

    sent = len(fake.requests)
    unlabelled = run(tmp_path, fake, *args, "--prompt", "Support never answered.")
    assert unlabelled.returncode == 1
    assert "needs candidate labels (--labels)" in unlabelled.stderr
    assert len(fake.requests) == sent  # nothing sent

    empty = run(tmp_path, fake, *args, "--prompt", "x", "--labels", " , ")
    assert empty.returncode == 2 and empty.stderr.count("\n") == 1
