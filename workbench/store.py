"""store.py is the workbench's one result store: results by key, one JSON file each, so that a run that is killed
goes on where it stopped and a rerun repeats nothing. `compare` stores one result per (candidate, task), `context`
one per grid cell, `ab` one answer per request, BFCL one scored entry per (design, entry), and `quantize` one record
per checkpoint it made. `Store.key` makes a key from the content that decides a result (the request, the settings,
the versions), so a change to any of it is a new key. It knows nothing of what the results mean."""

import hashlib
import json
import os
import re
import threading
from pathlib import Path

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,150}")


class Store:
    """Results by key, one JSON file each, written whole or not at all (a temporary file, then os.replace)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        (self.folder / "results").mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(content) -> str:
        """The key of a result decided by `content` (anything JSON can say): the SHA-256 of its canonical JSON."""
        text = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, key: str) -> Path:
        """A plain key is its own file name; any other (a slash, a space, very long) is named by its hash."""
        name = key if _PLAIN.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()
        return self.folder / "results" / f"{name}.json"

    def get(self, key: str) -> dict | None:
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict) -> None:
        path = self.path(key)
        tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")  # threads of one run write at once
        tmp.write_text(json.dumps(value, ensure_ascii=False, default=str), encoding="utf-8")
        os.replace(tmp, path)

    def keys(self) -> list[str]:
        return sorted(p.stem for p in (self.folder / "results").glob("*.json"))

    def __len__(self) -> int:
        return sum(1 for _ in (self.folder / "results").glob("*.json"))
