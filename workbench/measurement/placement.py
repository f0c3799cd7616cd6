"""placement.py says where a benchmark's client and its server run, and sets it.

On one host with overlapping CPUs the load generator takes CPU from the server, so the figures measure both.
`placement` reports each one's CPUs (the server's found by its port, or by the process given), whether they overlap,
and how to pin them apart; `pin` and `pinned` set the CPUs this process and the processes it starts run on;
`machine` the client machine's facts. Linux's /proc is read; nothing is sent to a server.
"""

import contextlib
import os
import re
import urllib.parse
from pathlib import Path

from workbench.errors import ConfigError
from workbench.serving import hardware

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def parse_cpus(text: str) -> set[int]:
    """'0', '0-2,5' (as `taskset -c` takes them) → {0, 1, 2, 5}, each one of this machine's CPUs."""
    cpus, have = set(), os.cpu_count() or 1
    parts = [re.fullmatch(r"(\d+)(?:-(\d+))?", part) for part in str(text).replace(" ", "").split(",")]
    for m in parts if all(parts) else ():
        cpus |= set(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    if not all(parts) or not cpus or max(cpus) >= have:
        raise ConfigError(
            f"CPU list {text!r} is not a list of this machine's CPUs (0-{have - 1}). Fix: e.g. 0"
            + (f", or 0-{have // 2 - 1}" if have >= 4 else "")
            + ", as taskset -c takes them."
        )
    return cpus


def cpu_list(cpus) -> str:
    """{0, 1, 2, 5} → '0-2,5', the form taskset -c takes."""
    out, run = [], []
    for c in sorted(cpus):
        if run and c != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(c)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def pin(cpus: set[int]) -> None:
    """Run this process on `cpus` only: every thread of it, and every process it starts from now on."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cpus)


@contextlib.contextmanager
def pinned(cpus: set[int] | None):
    """Processes started inside run on `cpus` (they inherit this process's affinity, and so do their children:
    vLLM's engine core binds its threads within it); this process gets its own CPUs back afterwards."""
    before = os.sched_getaffinity(0)
    if cpus:
        pin(cpus)
    try:
        yield
    finally:
        if cpus:
            pin(before)


def _proc_cpus(pids) -> set[int]:
    """The CPUs any thread of these processes may run on (vLLM binds its compute threads apart from the rest)."""
    cpus = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    cpus |= os.sched_getaffinity(int(tid))
    return cpus


def listening_pids(port: int) -> list[int]:
    """The local processes listening on TCP `port` (/proc/net/tcp{,6} give the socket, /proc/PID/fd its owner)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{f[9]}]")
    pids = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()) if inodes else ():
        with contextlib.suppress(OSError):
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                pids.append(int(pid))
    return pids


def _with_children(pids: list[int]) -> list[int]:
    """These processes and all their descendants (vLLM's API server starts the engine core)."""
    parent = {}
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent[int(pid)] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    tree, grew = set(pids), True
    while grew:
        more = {p for p, pp in parent.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    return sorted(tree)


def split_cpus(cpus) -> tuple[set[int], set[int]]:
    """(client, server) CPUs for pinning them apart: the client a quarter (one CPU at least), the server the rest."""
    cpus = sorted(cpus)
    n = max(1, len(cpus) // 4)
    return set(cpus[:n]), set(cpus[n:])


def placement(server_url: str, server_pid: int | None = None, gpu_host: bool = False) -> dict:
    """Where the client (this process) and the server run: same host or not, each one's CPUs, and whether they
    overlap, with a note that says what it means and how to pin them apart. The server's processes are the one
    given (an engine started here) or whoever listens on the URL's port, with their children."""
    parsed = urllib.parse.urlparse(server_url)
    client = _proc_cpus([os.getpid()])
    out = {
        "same_host": parsed.hostname in LOCAL_HOSTS,
        "nproc": os.cpu_count(),
        "client_cpus": sorted(client),
        "server_pids": [],
        "server_cpus": None,
        "overlap": None,
        "gpu_host": gpu_host,
    }
    if not out["same_host"]:
        return {**out, "note": f"the server ({parsed.hostname}) is on another host: it shares no CPU with the client"}
    pids = _with_children([server_pid] if server_pid else listening_pids(parsed.port or 80))
    server = _proc_cpus(pids)
    if not server:
        return {
            **out,
            "note": f"the server on port {parsed.port} is on this host, but its process was not found "
            "(another user's or container's): whether it shares the client's CPUs is not known",
        }
    overlap = client & server
    out.update(server_pids=pids, server_cpus=sorted(server), overlap=sorted(overlap))
    if not overlap:
        return {**out, "note": f"client on CPUs {cpu_list(client)}, server on CPUs {cpu_list(server)}: pinned apart"}
    want_client, want_server = split_cpus(client | server)
    note = (
        f"client and server share CPUs {cpu_list(overlap)} of this host ({out['nproc']} in all): the load "
        "generator takes CPU from the server, so these figures measure both"
    )
    if want_server:
        note += (
            f". Pin them apart: serve with `taskset -c {cpu_list(want_server)} workbench serve ...` and give the "
            f"benchmark `--client-cpus {cpu_list(want_client)}`"
        )
    if gpu_host:
        note += (
            ". On a GPU host this matters far less: the model runs on the GPU, and only the API server's "
            "tokenizing and streaming share the CPUs"
        )
    return {**out, "note": note}


def machine() -> dict:
    """Where the benchmark ran: the client's machine (its load generator competes with a server beside it)."""
    facts = hardware.machine_facts()
    return {
        "python": facts.python,
        "platform": facts.platform,
        "cpu_count": facts.cpu_count,
        "memory_gib": facts.memory_gib,
        "gpus": [g.name for g in facts.gpus],
        "vllm_build": hardware.vllm_build(),
        "workbench": hardware.package_version("workbench"),
    }
