"""A scripted, local OpenAI-compatible server for the LLM proposer's tests.

Each test queues the replies it wants (JSON candidates, prose, HTTP errors,
hangs, ...) and the server answers POST /v1/chat/completions with them in
order, recording every request so the test can inspect prompts and response
formats.  It binds to 127.0.0.1 on a free port and never touches the network.

``llama_cpp=True`` mimics llama.cpp's server, which answers a
``response_format`` of type ``json_schema`` with HTTP 500 (without consuming
a scripted reply) but accepts ``json_object``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: an HTTP status, a message content or raw body, and usage."""

    status: int = 200
    content: str = ""
    body: str | None = None  # raw response body; overrides the chat-completion envelope
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0  # wait this long before answering (a hang past the client timeout)
    prompt_tokens: int | None = 100
    completion_tokens: int | None = 50

    @classmethod
    def candidates(cls, *formulas: str | tuple[str, str], **kwargs: Any) -> "Reply":
        """A well-formed JSON answer; each item is a formula or (formula, rationale)."""
        items = []
        for item in formulas:
            formula, rationale = item if isinstance(item, tuple) else (item, "scripted")
            items.append({"formula": formula, "rationale": rationale})
        return cls(content=json.dumps({"candidates": items}), **kwargs)

    @classmethod
    def prose(cls, text: str, **kwargs: Any) -> "Reply":
        return cls(content=text, **kwargs)

    @classmethod
    def error(cls, status: int, message: str = "scripted error", retry_after: str | None = None) -> "Reply":
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        body = json.dumps({"error": {"message": message, "type": "scripted", "code": status}})
        return cls(status=status, body=body, headers=headers)

    @classmethod
    def hang(cls, seconds: float) -> "Reply":
        """Answer (a valid but empty reply) only after ``seconds``: longer than the client waits."""
        return cls(content='{"candidates": []}', delay_s=seconds)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def prompt_text(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages)

    @property
    def format_kind(self) -> str:
        """'json_schema', 'json_object', 'ollama' or 'text': the structured-output form requested."""
        response_format = self.body.get("response_format")
        if isinstance(response_format, dict):
            return str(response_format.get("type"))
        if "format" in self.body:
            return "ollama"
        return "text"


@dataclass
class ScriptedLLMServer:
    """Context manager running the scripted server in a background thread."""

    replies: Iterable[Reply] = ()
    llama_cpp: bool = False
    model_ids: tuple[str, ...] = ("scripted-model",)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: queue.Queue[Reply] = queue.Queue()
        self.push(*self.replies)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._in_flight = 0
        self.max_in_flight = 0  # the most chat requests being answered at once
        self._thread: threading.Thread | None = None

    # -- scripting --------------------------------------------------------
    def push(self, *replies: Reply) -> None:
        for reply in replies:
            self._queue.put(reply)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- lifecycle --------------------------------------------------------
    def __enter__(self) -> "ScriptedLLMServer":
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # A short poll interval so that leaving the context does not wait half a second.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # releases handlers that are "hanging"
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- answering --------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    @contextlib.contextmanager
    def _counting_in_flight(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        response_format = body.get("response_format")
        if self.llama_cpp and isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            # What llama.cpp's server says when it cannot turn the schema into a grammar.
            return Reply.error(500, "Unsupported response_format type: json_schema")
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return Reply.error(500, "the scripted server has no reply left for this request")


def _make_handler(server: ScriptedLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            server._record(RecordedRequest(self.path, _lowered(self.headers), {}))
            if self.path.rstrip("/").endswith("/models"):
                data = [{"id": m, "object": "model", "owned_by": "tests"} for m in server.model_ids]
                self._send(200, json.dumps({"object": "list", "data": data}), ())
            else:
                self._send(404, json.dumps({"error": {"message": "not found"}}), ())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_unparsed": raw.decode("utf-8", "replace")}
            server._record(RecordedRequest(self.path, _lowered(self.headers), body))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, json.dumps({"error": {"message": "not found"}}), ())
                return
            reply = server._next_reply(body)
            with server._counting_in_flight():
                if reply.delay_s and server._stop.wait(reply.delay_s):
                    return  # shutting down
            self._send(reply.status, reply.body or _completion(body, reply), reply.headers)

        def _send(self, status: int, text: str, headers: tuple[tuple[str, str], ...]) -> None:
            payload = text.encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout); nothing to answer

    return Handler


def _lowered(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _completion(request: dict[str, Any], reply: Reply) -> str:
    envelope: dict[str, Any] = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model", "scripted-model"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.content},
            "finish_reason": "stop",
        }],
    }
    if reply.prompt_tokens is not None and reply.completion_tokens is not None:
        envelope["usage"] = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
    return json.dumps(envelope)


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (the port was just released)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def fast_config(base_url: str, **overrides: Any):
    """An ``LLMConfig`` for tests: the scripted model, tiny backoff, short timeout."""
    from sld.discovery.proposers.llm import LLMConfig

    settings: dict[str, Any] = {
        "model": "scripted-model", "base_url": base_url, "timeout_s": 5.0, "max_retries": 3,
        "backoff_initial_s": 0.001, "backoff_max_s": 0.01,
    }
    settings.update(overrides)
    return LLMConfig(**settings)
