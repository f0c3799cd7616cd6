"""Where the comparison scripts run the server and the load generators on this machine's CPUs (issue 36).

On two shared cores a load generator takes CPU from the server it measures, so a lighter client measures a faster
server: the tools then seem to disagree when they only weigh differently on the server. `pinned` (the default)
gives the server its own CPUs and every load generator the others:

- without --url the script starts the engine itself on the server's CPUs (this process takes them while vLLM
  starts, so vLLM's processes inherit them, and vLLM's CPU build binds its compute threads within them), then
  moves itself to the client's CPUs; peers started from here (GuideLLM, aiperf) inherit those;
- with --url the server must already run apart (`taskset -c 1 .venv/bin/workbench serve --port P`): the script
  checks it (placement.placement) and refuses a server that shares the client's CPUs.

`shared` runs everything unpinned, as a labelled illustration of the artifact; its results go to a file of their
own and never replace the pinned ones. Every result records the layout: mode, nproc, each side's CPUs, the
server's processes, and whether they overlap.
"""

import contextlib
import os
import sys

from workbench.measurement import bench, placement
from workbench.serving.engine import Engine, EngineConfig

MODES = ("pinned", "shared")


def add_flags(parser) -> None:
    parser.add_argument(
        "--layout",
        choices=MODES,
        default="pinned",
        help="pinned: server and load generators on CPUs of their own (default); shared: unpinned, "
        "an illustration of the artifact, written to a file of its own",
    )
    parser.add_argument("--server-cpus", default=None, help="the server's CPUs (default: all but the client's)")
    parser.add_argument(
        "--client-cpus", default=None, help="the load generators' CPUs (default: the first quarter, one CPU at least)"
    )


def cpus(args) -> tuple[set[int], set[int]]:
    """(client, server) CPUs: as given, else split from this process's CPUs (placement.split_cpus)."""
    client, server = placement.split_cpus(os.sched_getaffinity(0))
    client = placement.parse_cpus(args.client_cpus) if args.client_cpus else client
    server = (
        placement.parse_cpus(args.server_cpus)
        if args.server_cpus
        else (server if not args.client_cpus else os.sched_getaffinity(0) - client)
    )
    if args.layout == "pinned" and (not server or client & server):
        raise SystemExit(
            f"error: --layout pinned needs the client's CPUs ({placement.cpu_list(client)}) and the server's "
            f"({placement.cpu_list(server) or 'none'}) apart. Fix: e.g. --client-cpus 0 --server-cpus 1, or "
            "--layout shared for the unpinned illustration."
        )
    return client, server


@contextlib.contextmanager
def engine_for(args):
    """The engine to measure, laid out as --layout says, and the layout's record (a dict for the results)."""
    client, server = cpus(args) if args.layout == "pinned" else (None, None)
    if args.url:
        with Engine.connect(args.url, EngineConfig()) as engine:
            if client:
                placement.pin(client)
            yield engine, record(args, engine)
        return
    with placement.pinned(server):  # vLLM and its children inherit the server's CPUs
        engine = Engine.connect(None, EngineConfig())
    try:
        if client:
            placement.pin(client)
        yield engine, record(args, engine)
    finally:
        engine.stop()


def record(args, engine) -> dict:
    """The layout as measured, not as asked for: a pinned run whose server shares the client's CPUs is refused."""
    where = placement.placement(engine.url, engine.process.pid if engine.owned else None)
    layout = {
        "mode": args.layout,
        "nproc": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "started_here": engine.owned,
        "omp_threads_bind": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "auto"),
        **where,
    }
    if args.layout == "pinned" and (where["overlap"] or where["server_cpus"] is None):
        shared = (
            f"shares CPUs {placement.cpu_list(where['overlap'])} with this script's"
            if where["overlap"]
            else "could not be found among this host's processes, so its CPUs are not known"
        )
        sys.exit(
            f"error: --layout pinned, but the server at {engine.url} {shared}. Fix: start it apart (taskset -c "
            f"{placement.cpu_list(placement.split_cpus(range(os.cpu_count()))[1])} .venv/bin/workbench serve --port P), "
            "or leave out --url to let this script start one, or --layout shared for the unpinned illustration."
        )
    print(f"layout: {args.layout}: {where['note']}", flush=True)
    return layout


def warm(url: str, input_len: int, output_len: int) -> None:
    """A few unmeasured requests: the first after a pause pays for cold caches, whichever tool sends it."""
    bench.run(url, bench.Workload(2, input_len, output_len), concurrency=[1], warmup=0)
