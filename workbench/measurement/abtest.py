"""abtest.py runs prompt A/B tests: variants (system prompt, template, sampling, model or endpoint,
thinking on/off) over a dataset, each item repeated, concurrently, with retries, every answer cached.

A trial that fails (time-out, server error, refused request) is recorded as data and never stops
the run. Checks (`Assertion`) are applied to cached answers on every run, so changing them costs no
requests. The config, the dataset and the rendering of a prompt are `abconfig.py`'s, what the trials mean is
`abreport.py`'s, and the arithmetic is `stats.py`'s.

    config = abconfig.load_config(abconfig.EXAMPLE)
    report = abtest.run(config, url="http://127.0.0.1:8000")
    print(report.verdict)
"""

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Literal

from workbench import settings
from workbench.errors import ConfigError, EngineUnavailableError, RequestRejectedError, WorkbenchError
from workbench.measurement import abreport
from workbench.measurement.abconfig import ABConfig, Assertion, Item, Sampling, Variant, load_items, render
from workbench.serving.client import Client
from workbench.store import Store


# -- checks -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    label: str
    passed: bool
    detail: str = ""


def _json_payload(text: str):
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    return json.loads(fenced.group(1) if fenced else text.strip())


def _fill(text: str, values: dict, escape: bool = False) -> str:
    """Put the item's {column} values into an assertion; other braces (a regex's {3}) stay as they are."""

    def value(match):
        if match.group(1) not in values:
            return match.group(0)
        text_ = str(values[match.group(1)])
        return re.escape(text_) if escape else text_

    return re.sub(r"\{(\w+)\}", value, text)


def check(assertion: Assertion, trial: "Trial", item: Item) -> Check:
    """Apply one assertion to a finished trial. Strings may use the item's {columns}."""
    label = assertion.label
    if not trial.ok:
        return Check(label, False, "no answer: " + (trial.error or ""))
    output = trial.output
    value = assertion.value
    if isinstance(value, str) and assertion.type != "python":
        value = _fill(value, item.vars, escape=assertion.type == "regex")
        label = assertion.name or f"{assertion.type} {value}"
    folded = (lambda s: s.casefold()) if assertion.ignore_case else (lambda s: s)
    kind = assertion.type
    if kind == "equals":
        return Check(label, folded(output.strip()) == folded(value.strip()))
    if kind == "contains":
        return Check(label, folded(value) in folded(output))
    if kind == "not_contains":
        return Check(label, folded(value) not in folded(output))
    if kind == "regex":
        return Check(label, re.search(value, output, re.I if assertion.ignore_case else 0) is not None)
    if kind == "max_latency_s":
        return Check(label, trial.latency_s <= value, f"{trial.latency_s:.2f} s")
    if kind == "max_tokens":
        return Check(label, trial.completion_tokens <= value, f"{trial.completion_tokens} tokens")
    if kind == "json_schema":
        import jsonschema

        try:
            payload = _json_payload(output)
        except json.JSONDecodeError as exc:
            return Check(label, False, f"not JSON: {exc}")
        errors = list(jsonschema.Draft202012Validator(value).iter_errors(payload))
        return Check(label, not errors, errors[0].message if errors else "")
    # python: the config is the user's own code, trusted like a script they run
    names = {"output": output, "vars": item.vars, "trial": trial, "re": re, "json": json}
    try:
        return Check(label, bool(eval(value, names)))  # noqa: S307 - the user's own expression
    except Exception as exc:  # noqa: BLE001 - a predicate that raises is a failed check, shown
        return Check(label, False, f"{type(exc).__name__}: {exc}")


# -- trials and their cache -------------------------------------------------------------------
@dataclass
class Trial:
    """One request of one variant on one item (one repeat). `ok` is False when no answer came."""

    variant: str
    item: str
    repeat: int
    ok: bool
    output: str = ""
    reasoning: str = ""
    error: str | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    attempts: int = 0
    cached: bool = False
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.ok and all(c.passed for c in self.checks)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def default_store() -> Store:
    """Answers by request (model, its folder, messages, sampling, repeat), in the workbench's one result store.
    Only successful answers are kept, so a rerun retries what failed and repeats nothing else."""
    return Store(settings.cache_dir() / "abtest")


def _retryable(exc: Exception) -> bool:
    """Time-outs and lost connections, overload (429) and server faults (5xx); never a refusal (4xx)."""
    if isinstance(exc, EngineUnavailableError):
        return True
    return isinstance(exc, RequestRejectedError) and exc.retryable


_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.S)


class _Endpoint:
    """One (url, model) pair: its client and the identity that goes into cache keys."""

    def __init__(self, url: str, model: str | None, timeout_s: float):
        self.client = Client(url, model=model, timeout_s=timeout_s)
        card = self.client.model_card()  # fails early, once, when the engine is not there
        self.identity = {"model": card["id"], "root": card["root"]}


class Runner:
    """Sends requests with retries through the cache; shared by trials and the judge."""

    def __init__(self, config: ABConfig, url: str | None, cache: Store | None):
        self.config, self.url, self.cache = config, url, cache
        self._endpoints: dict[tuple, _Endpoint] = {}
        self._lock = threading.Lock()

    def endpoint(self, url: str | None, model: str | None) -> _Endpoint:
        url = url or self.url
        if not url:
            raise ConfigError(
                "no engine URL: pass --url http://127.0.0.1:PORT or set WORKBENCH_URL (or give each variant a url)."
            )
        with self._lock:
            if (url, model) not in self._endpoints:
                self._endpoints[(url, model)] = _Endpoint(url, model, self.config.timeout_s)
            return self._endpoints[(url, model)]

    def ask(
        self,
        endpoint: _Endpoint,
        messages: list[dict],
        params: dict,
        enable_thinking: bool | None,
        repeat: int,
        trial: Trial,
    ) -> Trial:
        request = {
            **endpoint.identity,
            "messages": messages,
            "params": params,
            "enable_thinking": enable_thinking,
            "repeat": repeat,
        }
        key = Store.key(request)
        stored = self.cache.get(key) if self.cache is not None else None
        if stored is not None:
            trial.__dict__.update(stored, ok=True, cached=True)
            return trial
        for attempt in range(1, self.config.retries + 2):
            trial.attempts = attempt
            try:
                result = endpoint.client.chat(messages, enable_thinking=enable_thinking, **params)
            except Exception as exc:  # noqa: BLE001 - a failed request is a data point, never fatal
                trial.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                if attempt > self.config.retries or not _retryable(exc):
                    return trial
                time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
                continue
            answer = {
                "output": _THINK.sub("", result.text),
                "reasoning": result.reasoning,
                "latency_s": result.total_s,
                "ttft_s": result.ttft_s,
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
                "finish_reason": result.finish_reason,
            }
            trial.__dict__.update(answer, ok=True, error=None)
            if self.cache is not None:
                self.cache.put(key, answer)
            return trial
        return trial


def run(
    config: ABConfig,
    url: str | None = None,
    *,
    cache: Store | None | Literal["default"] = "default",
    on_trial=None,
    cancel: threading.Event | None = None,
):
    """Run every variant on every item `repeats` times and return an `abreport.ABReport`.

    `on_trial(done, total, trial)` is called as trials finish; setting `cancel` stops before the
    next request (finished answers stay cached, so running again resumes where this stopped)."""
    if cache == "default":
        cache = default_store()
    items = load_items(config)
    runner = Runner(config, url or settings.engine_url(), cache)
    started = time.perf_counter()
    trials = _trials(config, config.variants, runner, items, on_trial, cancel)
    if cancel is not None and cancel.is_set():
        finished = sum(t.ok for t in trials)
        then = (
            "their answers are cached, so running again resumes from there"
            if cache is not None
            else "the answer cache was off, so running again starts over"
        )
        raise WorkbenchError(f"cancelled after {finished} of {len(trials)} trials; {then}.")
    judgements = judge(config, runner, items, trials) if config.judge else []
    return abreport.ABReport(config, items, trials, judgements, wall_s=time.perf_counter() - started)


def _trials(
    config: ABConfig,
    variants: list[Variant],
    runner: Runner,
    items: list[Item],
    on_trial=None,
    cancel: threading.Event | None = None,
) -> list[Trial]:
    """Every variant on every item, `repeats` times, `concurrency` at once, each checked by the assertions."""
    plan = [(variant, item, repeat) for item in items for variant in variants for repeat in range(config.repeats)]
    for variant in variants:
        runner.endpoint(variant.url, variant.model)

    def one(variant: Variant, item: Item, repeat: int) -> Trial:
        trial = Trial(variant.name, item.id, repeat, ok=False)
        if cancel is not None and cancel.is_set():
            trial.error = "cancelled"
            return trial
        runner.ask(
            runner.endpoint(variant.url, variant.model),
            render(variant, config, item),
            variant.params(config.defaults),
            variant.enable_thinking,
            repeat,
            trial,
        )
        trial.checks = [check(a, trial, item) for a in (*config.assertions, *item.assertions)]
        return trial

    trials = []
    with ThreadPoolExecutor(max_workers=config.concurrency) as pool:
        futures = [pool.submit(one, *task) for task in plan]
        for done, future in enumerate(as_completed(futures), 1):
            trials.append(future.result())
            if on_trial:
                on_trial(done, len(plan), trials[-1])
    return trials


def variant_scores(config: ABConfig, variant: str | None, url: str) -> list[dict]:
    """One variant of a config (its baseline by default) on the server at `url`, over the config's dataset and
    assertions, uncached: per item {"id", "score"} (the share of its repeats that passed every assertion) and the
    answers. What `workbench compare` asks of each candidate."""
    name = variant or config.baseline_name
    chosen = next((v for v in config.variants if v.name == name), None)
    if chosen is None:
        raise ConfigError(
            f"variant {name!r} is not in {config.name!r}. Valid: {', '.join(v.name for v in config.variants)}."
        )
    chosen = chosen.model_copy(update={"url": url, "model": None})
    items = load_items(config)
    trials = _trials(config, [chosen], Runner(config, url, None), items)
    by_item: dict[str, list[Trial]] = {}
    for trial in trials:
        by_item.setdefault(trial.item, []).append(trial)
    return [
        {
            "id": item.id,
            "score": sum(t.passed for t in by_item[item.id]) / len(by_item[item.id]),
            "answers": [t.output if t.ok else f"(no answer: {t.error})" for t in by_item[item.id]],
        }
        for item in items
    ]


# -- pairwise judging -------------------------------------------------------------------------
@dataclass(frozen=True)
class Judgement:
    item: str
    baseline: str
    variant: str
    first: str  # the judge's letter with the baseline shown as A
    second: str  # ... with the baseline shown as B
    winner: str | None  # the variant's name, the baseline's, or None for a tie or an unclear judge


def _letter(text: str) -> str:
    found = re.search(r"\b([AB])\b", text or "")
    return found.group(1) if found else "?"


def judge(config: ABConfig, runner: Runner, items: list[Item], trials: list[Trial]) -> list[Judgement]:
    """Ask the judge about each item's first answers, baseline against every other variant."""
    spec = config.judge
    source = next((v for v in config.variants if v.name == spec.variant), None)
    endpoint = runner.endpoint(
        spec.url or (source.url if source else None), spec.model or (source.model if source else None)
    )
    system = source.system if source and "system" not in spec.model_fields_set else spec.system
    params = spec.params(Sampling(temperature=0.0, max_tokens=8))
    first = {(t.variant, t.item): t for t in trials if t.repeat == 0}
    base = next(v for v in config.variants if v.name == config.baseline_name)
    out = []

    def ask(a: str, b: str, item: Item, repeat: int) -> str:
        request = render(base, config, item)[-1]["content"]
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": spec.prompt.format(request=request, a=a, b=b)}
        ]
        trial = runner.ask(endpoint, messages, params, None, repeat, Trial("judge", item.id, repeat, ok=False))
        return _letter(trial.output) if trial.ok else "?"

    for variant in config.variants:
        if variant.name == base.name:
            continue
        for item in items:
            a, b = first.get((base.name, item.id)), first.get((variant.name, item.id))
            if not (a and b and a.ok and b.ok):
                continue
            one, two = ask(a.output, b.output, item, 0), ask(b.output, a.output, item, 1)
            winner = base.name if (one, two) == ("A", "B") else variant.name if (one, two) == ("B", "A") else None
            out.append(Judgement(item.id, base.name, variant.name, one, two, winner))
    return out
