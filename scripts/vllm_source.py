"""Fetch a few source files of any vLLM release straight from its PyPI wheel, without downloading the wheel: a
wheel is a zip, and PyPI's file host answers HTTP range requests, so reading the zip's directory and the wanted
members costs a few hundred kilobytes instead of half a gigabyte. What the planner's comments cite (the profile
run, the dummy sampler run) was read this way, release by release.

    python scripts/vllm_source.py 0.10.1 vllm/v1/worker/gpu_model_runner.py [more paths] [--out /tmp/vllm-src]

Writes OUT/VERSION/PATH and prints each path with its size. Needs only the standard library and PyPI.
"""

import argparse
import io
import json
import sys
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

PYPI_JSON = "https://pypi.org/pypi/vllm/json"


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP range requests."""

    def __init__(self, url: str):
        self.url, self.pos = url, 0
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=60) as response:
            self.size = int(response.headers["Content-Length"])

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{end - 1}"})
        with urllib.request.urlopen(request, timeout=120) as response:
            data = response.read()
        self.pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def wheel_url(version: str) -> str:
    """The x86_64 Linux (or any) wheel of `vllm==version` on PyPI."""
    with urllib.request.urlopen(PYPI_JSON, timeout=60) as response:
        files = json.load(response)["releases"].get(version, [])
    wheels = [f for f in files if f["filename"].endswith(".whl")]
    if not wheels:
        sys.exit(f"vllm {version} has no wheel on PyPI")
    wheels.sort(key=lambda f: ("x86_64" not in f["filename"], f["filename"]))
    return urllib.parse.urljoin(PYPI_JSON, wheels[0]["url"])  # a mirror may answer with relative URLs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--out", default="/tmp/vllm-src")
    args = parser.parse_args()
    archive = zipfile.ZipFile(io.BufferedReader(RangeFile(wheel_url(args.version)), buffer_size=1 << 20))
    names = set(archive.namelist())
    for path in args.paths:
        target = Path(args.out) / args.version / path
        if path not in names:
            print(f"{path}: not in vllm {args.version}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(path))
        print(f"{target} ({target.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
