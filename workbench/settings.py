"""Values from the environment (WORKBENCH_*), read when asked for, never at import time."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where prepared models and engine logs live. Override with WORKBENCH_CACHE_DIR."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "workbench"
    return Path(os.environ.get("WORKBENCH_CACHE_DIR", default)).expanduser()


def engine_url() -> str | None:
    """A running engine to attach to instead of starting one (WORKBENCH_URL)."""
    return os.environ.get("WORKBENCH_URL") or None


def engine_log() -> str | None:
    """The start-up log of the engine at WORKBENCH_URL, when known (WORKBENCH_ENGINE_LOG)."""
    return os.environ.get("WORKBENCH_ENGINE_LOG") or None


def cpu_kv_cache_gib() -> int:
    """KV cache size for vLLM's CPU build (VLLM_CPU_KVCACHE_SPACE, whole GiB), 1 unless set."""
    return int(os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))


def ui_auth() -> str | None:
    """A login for the Gradio app, as user:password (WORKBENCH_AUTH)."""
    return os.environ.get("WORKBENCH_AUTH") or None


def report_db_url() -> str | None:
    """The database the daily report reads (WORKBENCH_DB_URL); its password stays in WORKBENCH_DB_PASSWORD."""
    return os.environ.get("WORKBENCH_DB_URL") or None
