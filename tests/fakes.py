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


class FakeOpenAIServer:
    """`respond(body) -> (status, json)` answers every POST; GET lists one model called "fake". Records each
    POST body in `bodies`. Use as a context manager; `url` is its root."""

    def __init__(self, respond):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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

            def log_message(self, *args):
                pass

        self.bodies: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> "FakeOpenAIServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()


def chat_completion(text: str) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
