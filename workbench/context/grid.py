"""grid.py runs the context-reliability grid against a served model and answers the question people ask: how much
of the context can I trust, beside how much of it fits in memory.

For every document (the user's, or two generated contracts, Chinese and English), every length (in tokens of the
served model's own tokenizer, through the server's /tokenize: the whole prompt plus the answer's reserve) and
every depth (0-100 % of the document), a few facts are planted at that depth with their distractors half the
document away (planting.py) and each is asked for through document QA (scoring.py). Each cell is stored the
moment it is finished (store.py, keyed by the server's identity, the document's text and the cell's settings),
so a killed run goes on where it stopped. Then: recall per cell (the heat map), recall per length with its Wilson
interval, the longest length up to which recall stays at or above the target, and the planner's memory answer for
the same model on a GPU (the longest context that fits and how many requests at that length).
It knows nothing about faces; plots.recall_map draws the map.
"""

import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import workbench.context.planting as planting  # not `from workbench.context import`: the package imports this
import workbench.context.scoring as scoring
from workbench import planner, settings, stats
from workbench.errors import ConfigError, WorkbenchError
from workbench.export import Exportable
from workbench.serving import models
from workbench.serving.client import Client
from workbench.store import Store
from workbench.tasks import docqa, docqa_dataset, documents

DEFAULT_LENGTHS = (1024, 2048, 4096)
DEFAULT_DEPTHS = (0.0, 25.0, 50.0, 75.0, 100.0)
VERSION = 1  # of planting and scoring: a change here recomputes every stored cell
MIN_LENGTH = 256


@dataclass(frozen=True)
class ContextRequest:
    """What a person asks. `documents` empty: the generated contracts (zh, en). `thinking` lists the modes to run
    (None: the model's default, False off, True on); left None, a server with a reasoning parser (Qwen3) runs off
    and on, any other its default."""

    documents: tuple[str, ...] = ()
    lengths: tuple[int, ...] = DEFAULT_LENGTHS
    depths: tuple[float, ...] = DEFAULT_DEPTHS
    facts_per_cell: int = 2
    target: float = 0.95
    seed: int = 0
    gpu: str | None = None
    gpu_total_gib: float | None = None
    thinking: tuple[bool | None, ...] | None = None
    store: str | None = None
    confidence: float = stats.DEFAULT_CONFIDENCE

    def summary(self) -> dict:
        return asdict(self)


def parse_lengths(text: str) -> tuple[int, ...]:
    """'1024,2048,4K' → (1024, 2048, 4096)."""
    out = []
    for part in (p.strip().lower() for p in str(text).split(",")):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(k?)", part)
        if not match:
            raise ConfigError(
                f"length {part!r} is not a number of tokens. Valid: whole numbers, 4K = 4096 "
                "(e.g. --lengths 1024,2048,4096)."
            )
        out.append(int(match.group(1)) * (1024 if match.group(2) else 1))
    return tuple(sorted(set(out)))


def parse_depths(text: str) -> tuple[float, ...]:
    """'0,25,50' → (0.0, 25.0, 50.0), in % of the document."""
    out = []
    for part in (p.strip().rstrip("%") for p in str(text).split(",")):
        if not part:
            continue
        try:
            out.append(float(part))
        except ValueError:
            raise ConfigError(
                f"depth {part!r} is not a number. Valid: 0 to 100, in % of the document (e.g. --depths 0,25,50,75,100)."
            ) from None
    return tuple(sorted(set(out)))


def parse_thinking(text: str) -> tuple[bool | None, ...] | None:
    """'on,off' → (True, False); 'default' → (None,); 'auto' → None (off and on where the server reasons)."""
    words = {"on": True, "off": False, "default": None}
    parts = [p.strip().lower() for p in str(text).split(",") if p.strip()]
    if parts == ["auto"]:
        return None
    unknown = [p for p in parts if p not in words]
    if unknown or not parts:
        raise ConfigError(
            f"thinking mode {(unknown or [text])[0]!r} is unknown. Valid: auto, or a comma-separated "
            "list of on, off, default (e.g. --thinking on,off)."
        )
    return tuple(dict.fromkeys(words[p] for p in parts))


def check(request: ContextRequest) -> None:
    """Every refusal that needs no server."""
    if not 0 < request.target <= 1:
        raise ConfigError(
            f"target {request.target} is outside (0, 1]. Fix: a share of facts found, e.g. --target 0.95."
        )
    if not request.lengths or not request.depths:
        empty = "lengths" if not request.lengths else "depths"
        raise ConfigError(
            f"the grid is empty: no {empty} given. Fix: e.g. --lengths 1024,2048,4096 --depths 0,25,50,75,100."
        )
    short = [n for n in request.lengths if n < MIN_LENGTH]
    if short:
        raise ConfigError(
            f"length {short[0]} is too short for a question and its answer. Valid: {MIN_LENGTH} tokens or more."
        )
    outside = [d for d in request.depths if not 0 <= d <= 100]
    if outside:
        raise ConfigError(f"depth {outside[0]:g} is outside 0-100 (% of the document). Fix: e.g. --depths 0,50,100.")
    if request.facts_per_cell < 1:
        raise ConfigError(f"facts per cell {request.facts_per_cell} must be at least 1.")
    if not 0 < request.confidence < 1:
        raise ConfigError(f"confidence {request.confidence} must be between 0 and 1, e.g. 0.95.")
    for path in request.documents:
        documents.load(path)  # an unreadable file says so before any question


# -- the haystacks --------------------------------------------------------------------------------------------
def generated_contracts(folder: Path, client: Client, tokens: int, seed: int = 0) -> list[documents.Document]:
    """A Chinese and an English contract (docqa_dataset's), each at least `tokens` long, written to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for language in planting.LANGUAGES:
        chars = tokens * (2 if language == "zh" else 5)
        for _ in range(4):
            path = folder / f"contract-{language}-{chars}.txt"
            if not path.is_file():
                docqa_dataset.make_contract(path, language, chars, seed)
            doc = documents.load(path)
            have = client.count_tokens(doc.text)
            if have >= tokens:
                break
            chars = int(chars * tokens / max(1, have) * 1.1)
        out.append(doc)
    return out


def _as_document(name: str, text: str) -> documents.Document:
    return documents.Document(name, "txt", text, (documents.Page(1, text, 0),))


@dataclass(frozen=True)
class Haystack:
    document: documents.Document
    language: str
    tokens: int
    digest: str


def haystacks(request: ContextRequest, client: Client, folder: Path) -> list[Haystack]:
    """The documents, measured in the served model's tokens; one shorter than a length asked for is refused."""
    longest = max(request.lengths)
    docs = [documents.load(p) for p in request.documents] or generated_contracts(folder, client, longest, request.seed)
    out = []
    for doc in docs:
        tokens = client.count_tokens(doc.text)
        too_long = [n for n in request.lengths if n > tokens]
        if too_long:
            lower = min(request.lengths)
            which = (
                f"shorter than the smallest length asked for ({lower:,})"
                if lower > tokens
                else f"shorter than the length {too_long[0]:,}"
            )
            raise ConfigError(
                f"document {doc.name} holds {tokens:,} tokens, {which}. Fix: pass a longer document, "
                f"or --lengths of at most {tokens:,}."
            )
        out.append(Haystack(doc, planting.language_of(doc.text), tokens, Store.key(doc.text)[:16]))
    return out


# -- one cell ---------------------------------------------------------------------------------------------------
def cell_facts(stack: Haystack, length: int, depth: float, request: ContextRequest) -> list[planting.Fact]:
    """The facts of a cell: the same for every model and thinking mode, so that their answers pair."""
    rng = random.Random(f"{request.seed}|{stack.digest}|{length}|{depth:g}")
    return planting.make_facts(
        request.facts_per_cell, stack.language, rng, prefix=f"{stack.document.name}:L{length}:d{depth:g}:"
    )


def planted_document(
    client: Client, stack: Haystack, facts: list[planting.Fact], length: int, depth: float, reserve: int
) -> tuple[documents.Document, int]:
    """The document cut so that its longest question's prompt plus `reserve` answer tokens is at most `length`,
    with the facts planted at `depth`; and that prompt's tokens."""
    budget = length - reserve
    longest = max((f.sentence for f in facts), key=len)
    fact = max(facts, key=lambda f: len(f.subject))
    text = stack.document.text
    chars_per_token = len(text) / max(1, stack.tokens)
    chars = int(len(text) * budget / max(1, stack.tokens))
    for _ in range(8):  # the prompt is the planted clauses and the question (fixed) plus the cut text
        kept = planting.cut(text, chars)
        planted = planting.plant(kept, facts, depth, planting.distractor_depth(depth))
        prompt = client.count_tokens(docqa._messages(planted, scoring.value_instruction(fact, longest)))
        if prompt <= budget:
            return _as_document(stack.document.name, planted), prompt
        if chars == 0:
            raise ConfigError(
                f"length {length:,} cannot hold the {len(facts)} planted facts of {stack.document.name} "
                f"with their distractors, the question and the answer ({prompt + reserve:,} tokens with "
                f"none of the document). Fix: --lengths of at least {prompt + reserve + 64:,}, or fewer "
                "--facts."
            )
        step = max(0, int(chars - (prompt - budget + 2) * chars_per_token))
        if len(planting.cut(text, step)) >= len(kept):  # the same line again: cut below it, so that it converges
            step = max(0, int(len(kept) - 1 - (prompt - budget) * chars_per_token * 1.1))
        chars = step
    raise WorkbenchError(f"could not cut {stack.document.name} to {length} tokens.")  # only if /tokenize is erratic


def _server(client: Client) -> dict:
    card = client.model_card()
    return {
        "model": card["id"],
        "root": card["root"],
        "max_model_len": card["max_model_len"],
        "vllm": client.server_version(),
    }


def run_cell(
    client: Client, stack: Haystack, length: int, depth: float, thinking: bool | None, request: ContextRequest
) -> dict:
    facts = cell_facts(stack, length, depth, request)
    doc, prompt = planted_document(client, stack, facts, length, depth, scoring.reserved_tokens(thinking))
    readings = [scoring.ask(client, doc, f, thinking) for f in facts]
    return {
        "document": stack.document.name,
        "language": stack.language,
        "length": length,
        "depth": depth,
        "thinking": thinking,
        "prompt_tokens": prompt,
        "facts": [f.as_dict() for f in facts],
        "readings": [r.as_dict() for r in readings],
    }


# -- the answer ---------------------------------------------------------------------------------------------------
def _mode(thinking: bool | None) -> str:
    return {None: "default", False: "thinking off", True: "thinking on"}[thinking]


def _k(tokens: int | None) -> str:
    if tokens is None:
        return "none"
    return f"{tokens // 1024}K" if tokens % 1024 == 0 else f"{tokens:,}"


def memory_answer(
    root: str | None, model: str, gpu: str | None, gpu_total_gib: float | None = None, quant: str | None = None
) -> dict:
    """The planner's answer for the served model on `gpu` (default the planner's, RTX 3090): the longest context
    of its curve that fits with at least one request, and how many requests fit at that length. `quant` None: the
    checkpoint's own format."""
    name = root if root and (Path(root) / "config.json").is_file() else model
    try:  # a model the planner cannot read (not here, not in the catalog, the Hub out of reach) is said, not fatal
        spec = models.find_model(name)
    except WorkbenchError as exc:
        return {"planned": False, "reason": f"{name} cannot be planned: {str(exc).splitlines()[0]}"}
    answer = planner.plan(
        planner.PlanRequest(
            model=name, gpu=gpu, gpu_total_gib=gpu_total_gib, quant=quant or spec.declared_format or "bf16", curve=True
        )
    )
    fits = [r for r in answer.curve if r.fits and r.max_concurrency >= 1]
    best = max(fits, key=lambda r: r.max_model_len) if fits else None
    return {
        "planned": True,
        "gpu": answer.gpu.name,
        "quant": answer.request.quant,
        "max_position_embeddings": spec.max_position_embeddings,
        "longest_fitting": best.max_model_len if best else None,
        "requests_at_longest": round(best.max_concurrency, 2) if best else None,
        "curve": [{k: getattr(r, k) for k in ("max_model_len", "fits", "max_concurrency")} for r in answer.curve],
    }


def summarize(cells: list[dict], request: ContextRequest) -> dict:
    """Recall per (length, depth) and per length with its interval; the longest reliable length."""

    def tally(rows):
        outcomes = [r["outcome"] for c in rows for r in c["readings"]]
        n, found = len(outcomes), outcomes.count(scoring.FOUND)
        low, high = stats.wilson_interval(found, n, request.confidence) if n else (None, None)
        return {
            "n": n,
            "found": found,
            "wrong": outcomes.count(scoring.WRONG),
            "not_found": outcomes.count(scoring.NOT_FOUND),
            "recall": found / n if n else None,
            "interval": [low, high],
        }

    grid = [
        {"length": L, "depth": d, **tally([c for c in cells if c["length"] == L and c["depth"] == d])}
        for L in request.lengths
        for d in request.depths
    ]
    per_length = [{"length": L, **tally([c for c in cells if c["length"] == L])} for L in request.lengths]
    longest = None
    for row in per_length:  # quality holds up to the first length whose recall falls below the target
        if row["recall"] is None or row["recall"] < request.target:
            break
        longest = row
    return {"grid": grid, "per_length": per_length, "longest": longest}


def headline(longest: dict | None, mem: dict, target: float) -> str:
    """The one line: "memory allows 8K (12.3 requests) on RTX 3090; quality holds to 2K (recall ...)"."""
    if mem.get("planned"):
        fit = mem["longest_fitting"]
        memory_part = (
            f"memory allows {_k(fit)} ({mem['requests_at_longest']:g} full-length requests at once) on {mem['gpu']}"
            if fit
            else f"memory allows no context on {mem['gpu']}"
        )
    else:
        memory_part = "memory not planned"
    if longest is None:
        quality = f"quality holds at no length asked (recall below {target:g} from the shortest)"
    else:
        low, high = longest["interval"]
        quality = (
            f"quality holds to {_k(longest['length'])} (recall {longest['recall']:.2f}, "
            f"interval {low:.2f}-{high:.2f}, target {target:g})"
        )
    return f"{memory_part}; {quality}"


@dataclass(frozen=True)
class ContextReport(Exportable):
    """One map per mode (thinking default, off or on) of one served model, with its answers."""

    request: dict
    server: dict
    maps: list[dict]
    seconds: float = 0.0
    store: str = ""
    reused: int = 0
    computed: int = 0
    cells: list[dict] = field(default_factory=list)

    @property
    def headlines(self) -> list[str]:
        return [m["headline"] for m in self.maps]

    def items(self, thinking: bool | None = None) -> list[dict]:
        """Every planted fact as a pass item (1 found, 0 not): what compare's paired verdict reads."""
        return [
            {"id": r["fact"], "score": float(r["outcome"] == scoring.FOUND), "outcome": r["outcome"]}
            for c in self.cells
            if c["thinking"] == thinking
            for r in c["readings"]
        ]

    def as_dict(self) -> dict:
        return {
            "request": self.request,
            "server": self.server,
            "maps": self.maps,
            "seconds": round(self.seconds, 1),
            "store": self.store,
            "reused": self.reused,
            "computed": self.computed,
            "cells": self.cells,
        }

    def csv_rows(self) -> tuple[list[str], list[list]]:
        header = ["model", "mode", "length", "depth", "facts", "found", "wrong", "not_found", "recall"]
        return header, [
            [
                self.server["model"],
                m["mode"],
                g["length"],
                g["depth"],
                g["n"],
                g["found"],
                g["wrong"],
                g["not_found"],
                g["recall"],
            ]
            for m in self.maps
            for g in m["grid"]
        ]

    def to_markdown(self) -> str:
        out = [f"# How much of the context can I trust? {self.server['model']}", ""]
        for m in self.maps:
            depths = sorted({g["depth"] for g in m["grid"]})
            out += [
                f"## {m['mode']}",
                "",
                f"**{m['headline']}**",
                "",
                "| length \\ depth | " + " | ".join(f"{d:g} %" for d in depths) + " | all (interval) |",
                "|---|" + "---|" * (len(depths) + 1),
            ]
            for row in m["per_length"]:
                cells = [g for g in m["grid"] if g["length"] == row["length"]]
                low, high = row["interval"]
                shown = [f"{g['recall']:.2f}" if g["recall"] is not None else "-" for g in cells]
                out.append(
                    f"| {row['length']:,} | "
                    + " | ".join(shown)
                    + f" | {row['recall']:.2f} ({low:.2f}-{high:.2f}), {row['wrong']} wrong of {row['n']} |"
                )
            out.append("")
        out.append(f"{self.computed} cells asked, {self.reused} reused from {self.store}; {self.seconds:.0f} s.")
        return "\n".join(out)

    def to_text(self) -> str:
        return self.to_markdown()


def run(request: ContextRequest, server: "str | Client", out: str | Path | None = None, on_cell=None) -> ContextReport:
    """The grid against a server (its URL, or a Client with its own thinking choice), every cell stored as it
    finishes (in `request.store`, else OUT/store); `on_cell(text)` hears each one."""
    check(request)
    client = server if isinstance(server, Client) else Client(server)
    identity = _server(client)
    limit = identity["max_model_len"]
    beyond = [n for n in request.lengths if limit and n > limit]
    if beyond:
        raise ConfigError(
            f"length {beyond[0]:,} is beyond the served max_model_len {limit:,}. Fix: --lengths of at "
            f"most {limit:,}, or serve with a larger --max-model-len."
        )
    store = Store(request.store or Path(out or settings.cache_dir() / "context") / "store")
    stacks = haystacks(request, client, store.folder / "documents")
    modes = request.thinking or ((False, True) if client.server_parsers().reasoning else (None,))
    started, reused, computed = time.perf_counter(), 0, 0
    cells = []
    total = len(stacks) * len(request.lengths) * len(request.depths) * len(modes)
    for thinking in modes:
        for stack in stacks:
            for length in request.lengths:
                for depth in request.depths:
                    key = (
                        "context-"
                        + Store.key(
                            {
                                "server": identity,
                                "document": stack.digest,
                                "length": length,
                                "depth": depth,
                                "facts": request.facts_per_cell,
                                "seed": request.seed,
                                "thinking": thinking,
                                "version": VERSION,
                                "choice": getattr(client, "thinking_choice", None),
                            }
                        )[:24]
                    )
                    cell = store.get(key)
                    state = "reused"
                    if cell is None:
                        cell = run_cell(client, stack, length, depth, thinking, request)
                        store.put(key, cell)
                        state = "done"
                        computed += 1
                    else:
                        reused += 1
                    cells.append(cell)
                    if on_cell:
                        found = sum(r["outcome"] == scoring.FOUND for r in cell["readings"])
                        on_cell(
                            f"[{len(cells)}/{total}] {stack.document.name} {_mode(thinking)} {length:,} tokens at "
                            f"{depth:g} %: {found}/{len(cell['readings'])} found ({state})"
                        )
    mem = memory_answer(identity["root"], identity["model"], request.gpu, request.gpu_total_gib)
    maps = []
    for thinking in modes:
        summary = summarize([c for c in cells if c["thinking"] == thinking], request)
        maps.append(
            {
                "mode": _mode(thinking),
                "thinking": thinking,
                **summary,
                "memory": mem,
                "headline": headline(summary["longest"], mem, request.target),
            }
        )
    return ContextReport(
        request.summary(), identity, maps, time.perf_counter() - started, str(store.folder), reused, computed, cells
    )
