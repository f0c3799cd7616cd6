"""A stand-in for the Hugging Face Hub: a local HTTP server that speaks the part of the Hub's API that
`huggingface_hub` uses to read a model, so that the real client can be tested here, where the Hub cannot be reached.

It serves real folders (the bundled model, the tiny Qwen3, the public config of Qwen/Qwen3-14B-AWQ) as repos:
file resolution with the headers the client needs (`X-Repo-Commit`, a quoted `ETag`, `Content-Length`), range
requests (206 with `Content-Range`, as `get_safetensors_metadata` and a resumed download ask), repo info and the
file tree. It answers as the Hub does for a gated repo without a token (401, `X-Error-Code: GatedRepo`), a missing
repo (404, `RepoNotFound`), a missing revision (404, `RevisionNotFound`) and a missing file (404, `EntryNotFound`).
What the client asks of such a server: shared/reference/hub_standin.md. Every request is logged in `requests`.

    with HubStandin({"test-org/tiny": folder}) as hub:   # then HF_ENDPOINT=hub.url
"""

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

CHUNK = 1 << 16


@dataclass
class Repo:
    folder: Path
    gated: bool = False

    @property
    def files(self) -> list[str]:
        return sorted(
            str(p.relative_to(self.folder))
            for p in self.folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    @property
    def commit(self) -> str:
        listing = [(f, (self.folder / f).stat().st_size) for f in self.files]
        return hashlib.sha1(json.dumps(listing).encode()).hexdigest()

    def etag(self, name: str) -> str:
        stat = (self.folder / name).stat()
        return hashlib.sha256(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()


class HubStandin:
    """`repos`: {"org/name": folder}; `gated`: repo ids that need `token`; `bytes_per_s`: a throttle for the
    downloads of files over 1 MiB (so that a test can kill a download halfway)."""

    def __init__(
        self,
        repos: dict[str, Path],
        gated: tuple[str, ...] = (),
        token: str = "hf_standin_token",
        bytes_per_s: float | None = None,
    ):
        self.repos = {rid: Repo(Path(f), rid in gated) for rid, f in repos.items()}
        self.token = token
        self.bytes_per_s = bytes_per_s
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "HubStandin":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(hub: HubStandin):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet; the requests are in hub.requests
            pass

        def do_HEAD(self):
            self._answer(head=True)

        def do_GET(self):
            self._answer(head=False)

        # -- answers ------------------------------------------------------------------------------
        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            if "Content-Length" not in (headers or {}):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head and body:
                self.wfile.write(body)

        def _json(self, data, head=False):
            self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"}, head)

        def _error(self, status: int, code: str, message: str, head=False):
            self._send(
                status,
                json.dumps({"error": message}).encode(),
                {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message},
                head,
            )

        def _repo(self, repo_id: str, head: bool) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found", head)
                return None
            if repo.gated and self.headers.get("Authorization") != f"Bearer {hub.token}":
                self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted.", head)
                return None
            return repo

        def _revision_ok(self, repo: Repo, revision: str, head: bool) -> bool:
            if unquote(revision) in ("main", repo.commit):
                return True
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return False

        def _answer(self, head: bool):
            path = urlparse(self.path).path
            hub.requests.append({"method": self.command, "path": path, "range": self.headers.get("Range")})
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path):
                if (repo := self._repo(m[1], head)) and self._revision_ok(repo, m[2], head):
                    self._json(
                        {
                            "id": m[1],
                            "sha": repo.commit,
                            "siblings": [{"rfilename": f} for f in repo.files],
                            "gated": repo.gated,
                            "private": False,
                        },
                        head,
                    )
            elif m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path):
                if (repo := self._repo(m[1], head)) and self._revision_ok(repo, m[2], head):
                    self._json(
                        [
                            {"type": "file", "path": f, "size": (repo.folder / f).stat().st_size, "oid": repo.etag(f)}
                            for f in repo.files
                        ],
                        head,
                    )
            elif m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                if (repo := self._repo(m[1], head)) and self._revision_ok(repo, m[2], head):
                    self._file(repo, unquote(m[3]), head)
            else:
                self._error(404, "EntryNotFound", f"{path} is not part of the Hub's API this stand-in speaks", head)

        def _file(self, repo: Repo, name: str, head: bool):
            file = repo.folder / name
            if name not in repo.files:
                self._error(404, "EntryNotFound", f"{name} does not exist", head)
                return
            size = file.stat().st_size
            start, end, status = 0, size - 1, 200
            if m := re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or ""):
                start, end, status = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1), 206
            headers = {
                "X-Repo-Commit": repo.commit,
                "ETag": f'"{repo.etag(name)}"',
                "Accept-Ranges": "bytes",
                "Content-Length": end - start + 1,
                "Content-Type": "application/octet-stream",
            }
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self._send(status, b"", headers, head=True)
            if head:
                return
            slow = hub.bytes_per_s if size > (1 << 20) else None
            with open(file, "rb") as f:
                f.seek(start)
                left = end - start + 1
                try:
                    while left > 0:
                        block = f.read(min(CHUNK, left))
                        self.wfile.write(block)
                        left -= len(block)
                        if slow:
                            time.sleep(len(block) / slow)
                except (BrokenPipeError, ConnectionResetError):  # the client went away (a killed download)
                    pass

    return Handler
