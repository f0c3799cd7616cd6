"""hub.py reads models from the Hugging Face Hub through `huggingface_hub`: their small files without the weights,
and the weights when they are needed.

`metadata(repo_id)` fetches what planning needs (config.json, the tokenizer config and chat template, and each
safetensors shard's header through HTTP range requests, as `get_safetensors_metadata` does) into the Hugging Face
cache, so the same plan works offline later. `download(repo_id)` checks the free disk first, then fetches the
whole snapshot with a progress bar; an interrupted download resumes. A face that is no terminal (a tab, a notebook)
hears the same progress through `watching(callback)`. Every failure the Hub reports (gated, no such
repo, no such revision, no network) becomes one `ModelError` line with the fix.

The environment is read at each call, not at import (huggingface_hub reads it once): HF_ENDPOINT, HF_HOME /
HF_HUB_CACHE, HF_HUB_OFFLINE and HF_TOKEN. This module knows nothing about ModelSpec or serving.
"""

import json
import logging
import os
import re
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from workbench.errors import ConfigError, ModelError

# Hugging Face's rule for a repo name: letters, digits, `-`, `_`, `.`; no `--` or `..`; at most 96 characters.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")
METADATA_FILES = ("config.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")
DISK_MARGIN_BYTES = 1 << 30  # left free after a download


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands: bytes done of total, and the rate (bytes/s) once it is known."""

    repo_id: str
    done: int
    total: int
    rate: float | None = None

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def __str__(self) -> str:
        gib = 2**30
        text = f"downloading {self.repo_id}: {self.done / gib:.2f} of {self.total / gib:.2f} GiB"
        if self.total:
            text += f" ({self.done / self.total:.0%})"
        if self.rate and not self.finished:
            left_s = (self.total - self.done) / self.rate
            left = f"{left_s / 60:.0f} min" if left_s >= 90 else f"{left_s:.0f} s"
            text += f", {self.rate / 2**20:.1f} MiB/s, about {left} left"
        return text


_watchers: list = []
_watchers_lock = threading.Lock()
WATCH_EVERY_S = 0.5  # a watcher hears a download at most this often (and always its last step)


@contextmanager
def watching(callback):
    """Within this block, every download in this process also reports its `DownloadProgress` to `callback`: what a
    tab or a notebook shows where no terminal shows the progress bar."""
    with _watchers_lock:
        _watchers.append(callback)
    try:
        yield
    finally:
        with _watchers_lock:
            _watchers.remove(callback)


def _reporting(base, repo_id: str):
    """`base` (a tqdm class) that also tells the watchers, at most every WATCH_EVERY_S."""

    class Reporting(base):
        _told = 0.0

        def update(self, n=1):
            shown = super().update(n)
            now = time.monotonic()
            if _watchers and (now - self._told >= WATCH_EVERY_S or self.n >= (self.total or 0)):
                self._told = now
                progress = DownloadProgress(repo_id, int(self.n), int(self.total or 0), self.format_dict.get("rate"))
                for callback in list(_watchers):
                    callback(progress)
            return shown

    return Reporting


@dataclass(frozen=True)
class HubModel:
    """A model on the Hub, as far as planning needs it: a cache folder holding its config (and the tokenizer files
    it has), and the weights' exact bytes from the safetensors headers when they could be read."""

    repo_id: str
    revision: str | None
    commit: str | None
    folder: Path
    weight_bytes: int | None = None
    parameters: dict | None = None  # {dtype: count}, from the headers

    @property
    def weights_source(self) -> str:
        if self.weight_bytes is not None:
            return f"the safetensors headers of {self.repo_id} (exact)"
        return f"computed from {self.repo_id}'s config.json (no safetensors headers read)"


def looks_like_repo_id(text: str) -> bool:
    """`org/name` as typed, not a path that exists here (a relative folder `models/x` wins)."""
    text = str(text)
    return (
        "/" in text
        and not text.startswith(("/", ".", "~"))
        and not Path(text).expanduser().exists()
        and text.count("/") >= 1
        and "\\" not in text
    )


def check_repo_id(repo_id: str) -> str:
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise ConfigError(
            f"model {repo_id!r} is neither a Hugging Face id nor a folder here. Valid: an id "
            "`org/name` (letters, digits, '-', '_', '.'), e.g. Qwen/Qwen3-14B-AWQ, a folder with "
            "config.json, or a catalog name. Fix: check the spelling."
        )
    return repo_id


# -- the environment, read at each call --------------------------------------------------------------------
def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


_REACHABLE: dict[tuple, bool] = {}


def reachable(timeout_s: float = 3.0) -> bool:
    """Whether the endpoint answers a TCP connection (asked once per process): without it, huggingface_hub would
    retry for half a minute before falling back to the cache. Behind a proxy the client's own answer decides."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return True
    url = urlparse(endpoint())
    key = (url.hostname, url.port or (443 if url.scheme == "https" else 80))
    if key not in _REACHABLE:
        try:
            socket.create_connection(key, timeout=timeout_s).close()
            _REACHABLE[key] = True
        except OSError:
            _REACHABLE[key] = False
    return _REACHABLE[key]


def _local_only() -> bool:
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # its retry warnings are not the user's answer
    return offline() or not reachable()


def token() -> str | None:
    return os.environ.get("HF_TOKEN") or None  # None: huggingface_hub's stored login, if any


def _common(repo_id: str, revision: str | None) -> dict:
    return dict(repo_id=repo_id, revision=revision, cache_dir=str(cache_dir()), endpoint=endpoint(), token=token())


# -- errors -------------------------------------------------------------------------------------------------
def _error(exc: Exception, repo_id: str, revision: str | None) -> ModelError:
    """What the Hub said, as one line with the fix."""
    from huggingface_hub import errors

    page = f"{endpoint()}/{repo_id}"
    if isinstance(exc, errors.GatedRepoError):
        have = "HF_TOKEN is set but its account has no access" if token() else "no token was given (HF_TOKEN)"
        return ModelError(
            f"{repo_id} is a gated model and {have}. Fix: accept its licence on {page} while logged "
            "in, then set HF_TOKEN to a read token of that account (https://huggingface.co/settings/"
            "tokens) or run `hf auth login`."
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return ModelError(
            f"{repo_id} has no revision {revision!r}. Fix: give a branch, tag or commit listed on "
            f"{page}, or leave --revision out for main."
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return ModelError(
            f"there is no model {repo_id!r} on {endpoint()} (or it is private and "
            f"{'HF_TOKEN has no access' if token() else 'no HF_TOKEN is set'}). Fix: check the id on "
            f"{page}, or set HF_TOKEN for a private repo."
        )
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return ModelError(
            f"{repo_id} has no config.json: it is not a transformers model vLLM can serve. Fix: "
            "give the id of a model repo with config.json and *.safetensors."
        )
    if isinstance(exc, errors.LocalEntryNotFoundError) or _is_network(exc):
        why = "HF_HUB_OFFLINE is set" if offline() else f"{endpoint()} cannot be reached"
        return ModelError(
            f"{repo_id}{'@' + revision if revision else ''} is not in the Hugging Face cache "
            f"({cache_dir()}) and {why}. Fix: run `workbench download {repo_id}` where the Hub can be "
            "reached (then the cache serves it offline), or point HF_HOME at a cache that holds it."
        )
    if isinstance(exc, errors.HfHubHTTPError):
        status = getattr(exc.response, "status_code", "?") if getattr(exc, "response", None) is not None else "?"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ModelError(
            f"the Hub answered HTTP {status} for {repo_id}: {first}. Fix: try again later, or check "
            "HF_TOKEN and the id."
        )
    return ModelError(
        f"reading {repo_id} from the Hub failed: {type(exc).__name__}: {exc}. Fix: check the network and the id."
    )


def _is_network(exc: Exception) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(
        names
        & {
            "ConnectError",
            "ConnectionError",
            "TimeoutException",
            "OfflineModeIsEnabled",
            "NetworkError",
            "ConnectTimeout",
            "ReadTimeout",
        }
    )


# -- metadata without weights -------------------------------------------------------------------------------
def metadata(repo_id: str, revision: str | None = None, headers: bool = True) -> HubModel:
    """config.json (required), the tokenizer config and chat template (when the repo has them) and, with
    `headers`, the safetensors headers' byte count. From the cache when offline or when it already holds them."""
    from huggingface_hub import hf_hub_download

    check_repo_id(repo_id)
    local_only = _local_only()
    try:  # online, huggingface_hub itself falls back to the cache when the Hub cannot be reached
        config = Path(
            hf_hub_download(filename="config.json", local_files_only=local_only, **_common(repo_id, revision))
        )
    except Exception as exc:
        raise _error(exc, repo_id, revision) from None
    folder, commit = config.parent, config.parent.name
    for name in METADATA_FILES[1:]:
        try:
            hf_hub_download(filename=name, local_files_only=local_only, **_common(repo_id, commit))
        except Exception:  # optional: a repo without a chat template, or offline without it cached
            pass
    weight_bytes, parameters = _header_bytes(repo_id, commit, local_only) if headers else (None, None)
    return HubModel(repo_id, revision, commit, folder, weight_bytes, parameters)


def cached_metadata(repo_id: str, revision: str | None = None) -> HubModel | None:
    """What the cache already holds of a model's small files (config.json at least), without asking the Hub."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(cache_dir()), revision=revision)
    if not isinstance(found, str):
        return None
    folder = Path(found).parent
    weight_bytes, parameters = _header_bytes(repo_id, folder.name, local_only=True)
    return HubModel(repo_id, revision, folder.name, folder, weight_bytes, parameters)


def _header_file(repo_id: str, commit: str) -> Path:
    # beside the files it sums, in the Hugging Face cache (a dot-folder, as its own .locks, which its scan skips)
    return cache_dir() / ".workbench-safetensors-headers" / repo_id.replace("/", "--") / f"{commit}.json"


def _header_bytes(repo_id: str, commit: str, local_only: bool) -> tuple[int | None, dict | None]:
    """Sum of tensor bytes over every shard's header, read by range requests and kept for offline use."""
    kept = _header_file(repo_id, commit)
    if kept.is_file():
        data = json.loads(kept.read_text())
        return data["weight_bytes"], data["parameters"]
    if local_only:
        return None, None
    from huggingface_hub import HfApi

    try:
        meta = HfApi(endpoint=endpoint(), token=token()).get_safetensors_metadata(repo_id, revision=commit)
    except Exception:  # no safetensors, or headers unreadable: the architecture decides, and the plan says so
        return None, None
    total = sum(
        end - start for f in meta.files_metadata.values() for t in f.tensors.values() for start, end in [t.data_offsets]
    )
    data = {"weight_bytes": total, "parameters": dict(meta.parameter_count)}
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(data))
    return total, data["parameters"]


# -- weights ------------------------------------------------------------------------------------------------
def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The snapshot folder when the cache holds the whole model (config and weights), else None."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(local_files_only=True, **_common(repo_id, revision)))
    except Exception:
        return None
    return folder if any(folder.glob("*.safetensors")) or any(folder.glob("*.bin")) else None


def free_bytes(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(folder).free


def download(repo_id: str, revision: str | None = None, tqdm_class=None) -> Path:
    """The whole snapshot into the Hugging Face cache, with a progress bar (bytes, rate and time left; `tqdm_class`
    for another, e.g. a UI's); a no-op when it is there. The free disk is checked first. Each file is fetched into
    a partial blob that a later call continues with a range request, so a download that was killed or interrupted
    resumes where it stopped (huggingface_hub 2.4 itself starts each file afresh); huggingface_hub then links the
    snapshot."""
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm

    check_repo_id(repo_id)
    if _local_only():
        have = cached_snapshot(repo_id, revision)
        if have is None:
            why = "HF_HUB_OFFLINE is set" if offline() else f"{endpoint()} cannot be reached"
            raise ModelError(
                f"the weights of {repo_id}{'@' + revision if revision else ''} are not in the Hugging "
                f"Face cache ({cache_dir()}) and {why}. Fix: run `workbench download {repo_id}` where the "
                "Hub can be reached (then the cache serves it offline), or point HF_HOME at a cache that "
                "holds it."
            )
        return have
    found = metadata(repo_id, revision, headers=False)  # gated, missing repo or revision: the Hub's own answer first

    class Quiet(tqdm):  # the dry run that lists the files shows nothing
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": True})

    try:
        listing = snapshot_download(dry_run=True, tqdm_class=Quiet, **_common(repo_id, found.commit))
        todo = [f for f in listing if f.will_download]
        blobs = found.folder.parent.parent / "blobs"
        have = sum(p.stat().st_size for p in blobs.glob("*.part")) if blobs.is_dir() else 0
        need = sum(f.file_size or 0 for f in todo) - have
        free = free_bytes(cache_dir())
        if need > 0 and need + DISK_MARGIN_BYTES > free:
            raise ModelError(
                f"{repo_id} needs {need / 2**30:.2f} GiB more in {cache_dir()}, which has "
                f"{free / 2**30:.2f} GiB free (1 GiB is kept spare). Fix: free disk there, or set HF_HOME "
                "to a disk with room."
            )
        if todo:
            bar_class = _reporting(tqdm_class or tqdm, repo_id)
            with bar_class(
                total=sum(f.file_size or 0 for f in todo),
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"downloading {repo_id}",
            ) as bar:
                for f in todo:
                    _fetch_blob(repo_id, found.commit, f.filename, blobs, bar)
        return Path(snapshot_download(tqdm_class=Quiet, **_common(repo_id, found.commit)))
    except ModelError:
        raise
    except Exception as exc:
        raise _error(exc, repo_id, revision) from None


def _fetch_blob(repo_id: str, commit: str, filename: str, blobs: Path, bar) -> None:
    """One file into `blobs/<etag>`, through `blobs/<etag>.part`, continuing a part a killed run left behind."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session

    url = hf_hub_url(repo_id, filename, revision=commit, endpoint=endpoint())
    meta = get_hf_file_metadata(url, token=token(), endpoint=endpoint())
    blob = blobs / meta.etag
    if blob.exists():
        bar.update(meta.size or 0)
        return
    blobs.mkdir(parents=True, exist_ok=True)
    part = blob.with_name(blob.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    bar.update(done)
    if meta.size is None or done < meta.size:
        headers = build_hf_headers(token=token()) | ({"Range": f"bytes={done}-"} if done else {})
        with get_session().stream("GET", meta.location, headers=headers, follow_redirects=True) as response:
            response.raise_for_status()
            if done and response.status_code != 206:  # the server ignored the range: start over
                bar.update(-done)
                done = 0
            with open(part, "ab" if done else "wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    if meta.size is not None and part.stat().st_size != meta.size:
        raise ModelError(
            f"{filename} of {repo_id} arrived with {part.stat().st_size:,} of {meta.size:,} bytes. Fix: "
            "run the same command again; it continues where it stopped."
        )
    os.replace(part, blob)
