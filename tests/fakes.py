"""Fakes, for what the real engine cannot be made to do on demand (an HTTP 503, a 429, an answer scripted for
a test) or to see what goes over the wire. Each is a real HTTP server on 127.0.0.1 that answers as an
OpenAI-compatible server would, streamed when the request asks for it."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_LIST = {
    "object": "list",
    "data": [
        {"id": "fake", "object": "model", "created": 0, "owned_by": "test", "root": "/fake", "max_model_len": 4096}
    ],
}


class _JsonHandler(BaseHTTPRequestHandler):
    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 with the given handler, served in a thread while used as a context
    manager; `url` is its root."""

    def _listen(self, handler) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()


class FakeOpenAIServer(_LocalServer):
    """`respond(body) -> (status, json)` answers every POST; GET lists one model called "fake". Records each
    POST body in `bodies`. Use as a context manager; `url` is its root."""

    def __init__(self, respond):
        fake = self

        class Handler(_JsonHandler):
            def do_GET(self):
                self._send(200, MODEL_LIST)

            def _stream(self, completion):
                """A chat completion as the server-sent events of a streamed one: the text, then the usage."""
                choice = completion["choices"][0]
                chunks = [
                    {
                        "choices": [
                            {"index": 0, "delta": {"role": "assistant", "content": choice["message"]["content"]}}
                        ]
                    },
                    {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
                    {"choices": [], "usage": completion["usage"]},
                ]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for chunk in chunks:
                    event = {
                        "id": completion["id"],
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": completion["model"],
                        **chunk,
                    }
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.bodies.append(body)
                status, payload = respond(body)
                if status == 200 and body.get("stream") and payload.get("object") == "chat.completion":
                    self._stream(payload)
                else:
                    self._send(status, payload)

        self.bodies: list[dict] = []
        self._listen(Handler)


def chat_completion(text: str) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


class FakeKeepAliveServer(_LocalServer):
    """An HTTP/1.1 server that keeps connections open and, like vLLM's, closes one that sat idle for `keep_alive_s`.
    The close is modelled at its worst moment, as the race it is: a request that arrives on such a connection gets
    no answer, only the close ("Server disconnected without sending a response"). A fresh connection is answered
    with `chat_completion`; `connections` counts them."""

    def __init__(self, keep_alive_s: float):
        import time

        fake = self

        class Handler(_JsonHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                fake.connections += 1
                self.answered_at = None

            def do_POST(self):
                if self.answered_at is not None and time.monotonic() - self.answered_at >= keep_alive_s:
                    self.close_connection = True
                    return
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._send(200, chat_completion("yes"))
                self.answered_at = time.monotonic()

        self.connections = 0
        self._listen(Handler)


class FakeNvmlForTests:
    """Stands in for nvidia-ml-py's `pynvml` (no driver on this machine): one GPU on the given driver, and, when
    `gpu` is given as (name, total bytes, free bytes), that GPU's memory as NVML reports it."""

    def __init__(self, driver: str | None, gpu: tuple[str, int, int] | None = None):
        self.driver, self.gpu = driver, gpu

    def nvmlInit(self):
        if self.driver is None:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlDeviceGetCount(self):
        return 0 if self.gpu is None else 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return self.gpu[0]

    def nvmlDeviceGetMemoryInfo(self, handle):
        from types import SimpleNamespace

        name, total, free = self.gpu
        return SimpleNamespace(total=total, free=free, used=total - free)
