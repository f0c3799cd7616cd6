"""compare_request.py is what a comparison is asked: its candidates, its tasks and their settings, the benchmark
workload, the target GPU; each parsed from what a person types (`parse_candidate`, `parse_tasks`, `parse_workload`)
and checked together (`check`) before the first engine starts. It runs nothing: the tasks are compare_tasks.py's,
the run compare.py's.
"""

import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench import reference
from workbench.errors import ConfigError, WorkbenchError
from workbench.measurement import abconfig, bench, bench_report, bfcl, toolseval
from workbench.serving import hardware, hub, models, vllm_flags
from workbench.serving.client import Client
from workbench.serving.thinking import THINKING_SWITCH

# task → (what it measures, the kind of its items: verdict.KINDS)
TASKS = {
    "ppl": ("perplexity on held-out text (the end of Python's docs), per chunk", "ppl"),
    "tools": ("the project's 44 tool-calling cases, English and Chinese (tools-eval)", "pass"),
    "bfcl": ("BFCL v4's single-turn entries, scored by BFCL's own AST checker", "pass"),
    "docqa": ("the fields of generated contracts (docqa-eval): right value or not", "pass"),
    "ab": ("an A/B config's dataset and assertions, one of its variants", "score"),
    "context": ("facts planted over depth × length in generated contracts (workbench context): found or not", "pass"),
    "report": (
        "the daily report on the demo database's labelled days: the share of the prose's figures that are facts",
        "score",
    ),
}
DEFAULT_TASKS = ("ppl", "tools")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class Candidate:
    """A checkpoint (a folder, or the bundled model's name) served with `flags`, or a running server's URL.
    `thinking` (the option `,thinking=on|off`) is the client's choice for every request (None: each task's default,
    thinking.THINKING_DEFAULTS), so that one server can be scored with thinking on against off. `revision` (the option
    `,revision=R`) is a Hugging Face id's branch, tag or commit (EngineConfig.revision)."""

    name: str
    target: str
    flags: tuple[str, ...] = ()
    thinking: bool | None = None
    revision: str | None = None

    @property
    def is_url(self) -> bool:
        return self.target.startswith(("http://", "https://"))

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "target": self.target,
            "flags": list(self.flags),
            "url": self.is_url,
            "thinking": self.thinking,
            "revision": self.revision,
        }


_OPTIONS = "thinking=on, thinking=off, revision=BRANCH-TAG-OR-COMMIT (of a Hugging Face id)"


def parse_candidate(text: str) -> Candidate:
    """'[NAME=]CHECKPOINT-OR-URL[,thinking=on|off][,revision=R] [vLLM serve flags]': `int4=ckpt/gptq --max-num-seqs
    8`, `http://host:8000`, `think=http://host:8000,thinking=on`, `awq=Qwen/Qwen3-14B-AWQ,revision=main`."""
    try:
        parts = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(
            f"candidate {text!r} does not parse as a command line ({exc}). Fix: close the quotes."
        ) from None
    if not parts:
        raise ConfigError(
            "a candidate is empty. Valid: a checkpoint folder, the bundled model's name "
            f"({models.BUNDLED_MODEL}) or an http(s) URL, optionally NAME= before it."
        )
    head, flags = parts[0], tuple(parts[1:])
    name, sep, target = head.partition("=")
    if not sep or not _NAME.match(name):
        name, target = "", head
    target, *options = target.split(",")
    thinking = revision = None
    for option in options:
        key, _, value = option.partition("=")
        if key == "thinking" and value in ("on", "off"):
            thinking = THINKING_SWITCH[value]
        elif key == "revision" and value:
            revision = value
        else:
            raise ConfigError(
                f"candidate option {option!r} is unknown. Valid: {_OPTIONS}. Fix: e.g. --candidate "
                "'think=http://127.0.0.1:8000,thinking=on' or 'awq=Qwen/Qwen3-14B-AWQ,revision=main'."
            )
    if revision and target.startswith(("http://", "https://")):
        raise ConfigError(
            f"candidate option revision={revision} applies to a Hugging Face id; {target} is a running "
            "server, which serves what it was started with. Fix: drop the revision, or give the id."
        )
    if not name:
        name = (
            target.split("://", 1)[1].split("/", 1)[0]
            if target.startswith(("http://", "https://"))
            else models.served_name(target)
            if target == models.BUNDLED_MODEL
            else Path(target).name or target
        )
    return Candidate(name, target, flags, thinking, revision)


@dataclass(frozen=True)
class TaskSettings:
    """What decides each task's items: `items` caps every task (None: its whole default set)."""

    items: int | None = None
    seed: int = 0
    ppl_chars: int = 12_000
    chunk_chars: int = 500
    tools_design: str = "native"
    bfcl_categories: tuple[str, ...] = ()
    bfcl_per_category: int = 5
    docqa_count: int = 3
    ab_config: str | None = None
    ab_variant: str | None = None
    context_lengths: tuple[int, ...] = (1024, 2048, 4096)
    context_depths: tuple[float, ...] = (0.0, 50.0, 100.0)
    context_facts: int = 2

    def of(self, task: str) -> dict:
        """The settings that touch `task`: a change to any other leaves its stored results valid."""
        own = {
            "ppl": ("ppl_chars", "chunk_chars"),
            "tools": ("tools_design",),
            "bfcl": ("tools_design", "bfcl_categories", "bfcl_per_category", "seed"),
            "docqa": ("docqa_count",),
            "ab": ("ab_config", "ab_variant"),
            "context": ("context_lengths", "context_depths", "context_facts", "seed"),
            "report": (),
        }[task]
        return {"items": self.items, **{k: getattr(self, k) for k in own}}


@dataclass(frozen=True)
class CompareRequest:
    candidates: tuple[Candidate, ...]
    tasks: tuple[str, ...] = DEFAULT_TASKS
    settings: TaskSettings = field(default_factory=TaskSettings)
    workload: bench.Workload | None = field(default_factory=lambda: bench.Workload(num_prompts=8, output_len=32))
    concurrency: tuple[int, ...] = (1,)
    rate: float | None = None
    repeats: int = 2
    slo: bench_report.SLO = field(default_factory=bench_report.SLO)
    gpu: str | None = None
    gpu_total_gib: float | None = None
    plan_context: int = reference.MAX_MODEL_LEN  # the context the memory plan asks at
    max_model_len: int = 4096  # what a checkpoint is served with unless its flags say otherwise
    store: str | None = None
    confidence: float = 0.95

    def summary(self) -> dict:
        d = asdict(self)
        d["candidates"] = [c.as_dict() for c in self.candidates]
        return d


def parse_tasks(text: str) -> tuple[str, ...]:
    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ConfigError(
            f"unknown task {', '.join(map(repr, unknown)) or repr(text)}. Valid: {', '.join(TASKS)} "
            "(comma-separated, e.g. --tasks ppl,tools,docqa)."
        )
    return tuple(dict.fromkeys(tasks))


def parse_workload(text: str) -> tuple[tuple[int, ...], float | None] | None:
    """'c=1,2' (concurrency levels), 'rate=2' (requests per second, Poisson) or 'none' (no benchmark)."""
    text = text.strip().lower()
    if text in ("none", "off", ""):
        return None
    kind, sep, value = text.partition("=")
    try:
        if sep and kind in ("c", "concurrency"):
            levels = tuple(int(v) for v in value.split(",") if v.strip())
            if levels and all(v >= 1 for v in levels):
                return levels, None
        if sep and kind == "rate" and float(value) > 0:
            return (), float(value)
    except ValueError:
        pass
    raise ConfigError(
        f"workload {text!r} is not one of: c=LEVELS (e.g. c=1,2), rate=REQUESTS_PER_S (e.g. rate=2), "
        "none. Fix: write it in one of those forms."
    )


# -- checks before any work ----------------------------------------------------------------------------
def check(request: CompareRequest) -> None:
    """Every refusal that does not need a result: raised before the first engine starts."""
    cands = request.candidates
    if len(cands) < 2:
        raise ConfigError(
            f"compare needs at least two candidates (the first is the baseline); got {len(cands)}. "
            "Fix: add another --candidate, e.g. the bf16 model and its GPTQ checkpoint."
        )
    names = [c.name for c in cands]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(
            f"candidate name(s) {', '.join(twice)} appear twice. Fix: name them, e.g. --candidate int4=ckpt/gptq."
        )
    parse_tasks(",".join(request.tasks))
    if "ab" in request.tasks and not request.settings.ab_config:
        raise ConfigError(
            "task ab needs an A/B config. Fix: add --ab-config FILE (e.g. "
            f"{abconfig.EXAMPLE_NAME}), or drop ab from --tasks."
        )
    if "ab" in request.tasks:
        abconfig.load_config(request.settings.ab_config)
    if "bfcl" in request.tasks:
        bfcl.check_categories(request.settings.bfcl_categories)
    if request.settings.items is not None and request.settings.items < 1:
        raise ConfigError(f"--items {request.settings.items} must be at least 1.")
    if request.settings.tools_design not in toolseval.DESIGN_NAMES:
        raise ConfigError(
            f"tools design {request.settings.tools_design!r} is unknown. Valid: {', '.join(toolseval.DESIGN_NAMES)}."
        )
    if request.repeats < 1:
        raise ConfigError(f"--repeats {request.repeats} must be at least 1.")
    if request.gpu is not None:
        hardware.find_gpu(request.gpu, request.gpu_total_gib)  # an unknown card without its memory is refused
    seen = {}
    for c in cands:
        if c.is_url:
            if c.flags:
                raise ConfigError(
                    f"candidate {c.name}: serve flags ({' '.join(c.flags)}) only apply to a checkpoint "
                    "the compare serves; a running server keeps its own. Fix: drop them."
                )
            card = _reach(c)
            who = (card["id"], card["root"], Client(c.target).base_url, c.thinking)
            if who in seen:
                raise ConfigError(
                    f"candidates {seen[who]} and {c.name} are the same server ({c.target}). Fix: "
                    "give each candidate its own server or checkpoint."
                )
            seen[who] = c.name
        else:
            checkpoint_folder(c, fetch=False)
            vllm_flags.parse_args(c.flags)


def _reach(c: Candidate) -> dict:
    try:
        return Client(c.target, timeout_s=10).model_card()
    except WorkbenchError as exc:
        raise ConfigError(
            f"candidate {c.name}: {c.target} does not answer as an OpenAI-compatible server "
            f"({str(exc).splitlines()[0]}). Fix: start it (`workbench serve` prints its URL), or "
            "check the host and port."
        ) from None


def checkpoint_folder(c: Candidate, emit=None, fetch: bool = True) -> Path | None:
    """The candidate's folder, a Hub id's weights downloaded first (`emit` hears the download's progress as the
    engine step's). `fetch=False` only checks: a Hub id's metadata is read and nothing is downloaded (None)."""
    if (
        c.target != models.BUNDLED_MODEL
        and not (Path(c.target).expanduser() / "config.json").is_file()
        and models.hub_id(c.target) is None
    ):
        raise ConfigError(
            f"candidate {c.name}: {c.target!r} is not a checkpoint (no config.json there). Valid: a "
            f"folder with config.json and *.safetensors (`workbench quantize --out` writes one), the "
            f"bundled model's name ({models.BUNDLED_MODEL}), a Hugging Face id (Qwen/Qwen3-14B-FP8, "
            "downloaded first), or an http(s) URL of a running server."
        )
    if not fetch and models.hub_id(c.target) is not None and not Path(c.target).expanduser().exists():
        models.find_model(c.target, c.revision)  # the Hub's own answer for a missing or gated repo (or revision)
        return None
    with hub.watching(lambda d: emit("engine", "downloading", str(d)) if emit else None):
        return models.resolve_model(c.target, c.revision)
