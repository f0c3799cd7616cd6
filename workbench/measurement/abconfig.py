"""abconfig.py reads what a person writes for an A/B test: the config (YAML or a dict: variants,
dataset, checks, repeats, judge), checked field by field with errors that name the field and the
fix, and the dataset (CSV, JSONL or JSON) with every {placeholder} checked against its columns.

It sends no requests and applies no checks; `abtest.py` runs what this describes.
"""

import csv
import io
import json
import re
import string
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.errors import ConfigError, field_errors

# The worked example, shipped inside the package (pyproject's package-data): two system prompts, 30 questions.
EXAMPLE = Path(__file__).parents[1] / "data" / "ab_system_prompts.yaml"
EXAMPLE_NAME = "workbench/data/ab_system_prompts.yaml"
ASSERTION_TYPES = (
    "equals",
    "contains",
    "not_contains",
    "regex",
    "json_schema",
    "max_latency_s",
    "max_tokens",
    "python",
)
_STRICT = ConfigDict(extra="forbid")


# -- configuration (everything a person types is checked here) ---------------------------------
class Sampling(BaseModel):
    model_config = _STRICT
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1)
    max_tokens: int | None = Field(None, ge=1, le=131_072)
    seed: int | None = None
    stop: list[str] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)

    def params(self, defaults: "Sampling | None" = None) -> dict:
        """The request's sampling parameters: this one's, else the defaults' (unset ones left out)."""
        merged = {
            **(defaults.model_dump(exclude_none=True) if defaults else {}),
            **self.model_dump(include=set(Sampling.model_fields), exclude_none=True),
        }
        top_k = merged.pop("top_k", None)
        if top_k is not None:
            merged["extra_body"] = {"top_k": top_k}
        return merged


class Variant(Sampling):
    name: str = Field(min_length=1)
    system: str | None = None  # None or "": no system message
    template: str | None = None  # the user message with {placeholders}; default: the config's prompt
    model: str | None = None  # default: the server's only model
    url: str | None = None  # default: the run's engine
    enable_thinking: bool | None = None  # Qwen3's chat template switch; None leaves the template's default


class Assertion(BaseModel):
    model_config = _STRICT
    type: Literal[ASSERTION_TYPES]  # type: ignore[valid-type]
    value: Any
    ignore_case: bool = False
    name: str | None = None  # shown in the matrix; default "type value"

    @model_validator(mode="after")
    def _check_value(self):
        if self.type in ("equals", "contains", "not_contains", "regex", "python") and not isinstance(self.value, str):
            raise ValueError(f"{self.type} needs a string value, got {self.value!r}")
        if self.type in ("max_latency_s", "max_tokens") and not isinstance(self.value, (int, float)):
            raise ValueError(f"{self.type} needs a number, got {self.value!r}")
        if self.type == "json_schema":
            import jsonschema

            if not isinstance(self.value, dict):
                raise ValueError(f"json_schema needs a JSON schema object, got {self.value!r}")
            try:
                jsonschema.Draft202012Validator.check_schema(self.value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        if self.type == "regex":
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"regex {self.value!r} does not compile: {exc}") from None
        if self.type == "python":
            try:
                compile(self.value, "<assertion>", "eval")
            except SyntaxError as exc:
                raise ValueError(f"python {self.value!r} is not an expression: {exc.msg}") from None
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        value = "schema" if self.type == "json_schema" else self.value
        return f"{self.type} {value}"


class Judge(Sampling):
    """Pairwise judging: a model (or a variant's settings) picks the better of two answers, asked in
    both orders so that a preference for the first position cancels out."""

    variant: str | None = None  # reuse this variant's endpoint, model and system prompt
    model: str | None = None
    url: str | None = None
    system: str | None = "You compare two answers to the same request and pick the better one."
    prompt: str = (
        "Request:\n{request}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\n"
        "Which answer is better? Reply with one letter: A or B."
    )


class ABConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = "A/B test"
    dataset: str | list[dict] = Field(description="a CSV/JSONL/JSON file (relative to the config) or rows")
    prompt: str = "{input}"
    defaults: Sampling = Field(default_factory=lambda: Sampling(temperature=0.0, max_tokens=128))
    variants: list[Variant] = Field(min_length=2)
    baseline: str | None = None  # default: the first variant
    assertions: list[Assertion] = Field(default_factory=list, alias="assert")
    repeats: int = Field(1, ge=1, le=50)
    concurrency: int = Field(4, ge=1, le=64)
    retries: int = Field(2, ge=0, le=10)
    timeout_s: float = Field(120.0, gt=0)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    limit: int | None = Field(None, ge=1)  # only the first N items
    judge: Judge | None = None
    base_dir: str = Field(".", exclude=True)  # where a relative dataset path is looked up

    @field_validator("variants")
    @classmethod
    def _unique_names(cls, variants):
        names = [v.name for v in variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must differ; {duplicates} appear more than once")
        return variants

    @model_validator(mode="after")
    def _known_names(self):
        names = [v.name for v in self.variants]
        if self.baseline is not None and self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not a variant; choose one of {names}")
        if self.judge and self.judge.variant is not None and self.judge.variant not in names:
            raise ValueError(f"judge.variant {self.judge.variant!r} is not a variant; choose one of {names}")
        return self

    @property
    def baseline_name(self) -> str:
        return self.baseline or self.variants[0].name


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at `loc` (without its last element), for 'unknown field' errors."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = {f.alias or name: f for name, f in current.model_fields.items()}
        annotation = fields[part].annotation if part in fields else None
        candidates = [annotation, *typing.get_args(annotation)]
        for arg in list(candidates):
            candidates += typing.get_args(arg)
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return [f.alias or name for name, f in current.model_fields.items() if not f.exclude]


def _explain(exc: ValidationError, where: str) -> ConfigError:
    lines = field_errors(exc, lambda loc: _fields_at(ABConfig, loc))
    return ConfigError(
        f"{where} is not a valid A/B config:\n  "
        + "\n  ".join(lines)
        + f"\nFix the field(s) above; the worked example ({EXAMPLE_NAME}) shows every part."
    )


def parse_config(data: dict, base_dir: str | Path = ".", where: str = "the config") -> ABConfig:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where} must be a mapping of fields (name, dataset, variants, ...), got {type(data).__name__}."
        )
    try:
        return ABConfig.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as exc:
        raise _explain(exc, where) from None


def with_changes(config: ABConfig, where: str = "the config", **changes) -> ABConfig:
    """The config with some fields replaced (a None leaves its field as it was), checked again."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return config
    return parse_config({**config.model_dump(by_alias=True, exclude_unset=True), **changes}, config.base_dir, where)


def load_config(path: str | Path) -> ABConfig:
    """Read a YAML (or JSON) config; a relative dataset path is taken from the config's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no A/B config at {path}. Fix: pass a YAML file such as the worked example, {EXAMPLE}.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, path.parent, where=str(path))


# -- the dataset --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    id: str
    vars: dict
    assertions: tuple[Assertion, ...] = ()


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise ConfigError(
            f"dataset {path} does not exist. Fix: give a .csv, .jsonl or .json file, relative to the config's folder."
        )
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path} line {number} is not JSON: {exc}. Fix that line.") from None
        return rows
    if suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not JSON: {exc}") from None
        if isinstance(rows, list):
            return rows
        raise ConfigError(f"{path} must hold a list of rows, got {type(rows).__name__}.")
    raise ConfigError(f"dataset {path} has suffix {suffix!r}; use .csv, .jsonl or .json.")


def _placeholders(template: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


def dataset_path(config: ABConfig) -> Path | None:
    """The dataset's file (a relative path is beside the config), or None when the rows are in the config itself."""
    if isinstance(config.dataset, list):
        return None
    path = Path(config.dataset)
    return path if path.is_absolute() else Path(config.base_dir) / path


def beyond(config: ABConfig, fields: set[str], variants: int) -> list[str]:
    """What a form that shows `fields` of each of its first `variants` variants (and a config's name, dataset,
    prompt, checks, repeats, concurrency, limit and whether to judge) cannot carry: sampling values and settings
    away from their defaults, the judge's own settings, the variants past the first few. Empty when it carries all."""
    data = config.model_dump(by_alias=True, mode="json")
    sampling = {
        k
        for v in [data["defaults"], *data["variants"][:variants]]
        for k, value in v.items()
        if value is not None and k not in fields
    }
    settings = {
        k
        for k in ("retries", "timeout_s", "confidence", "baseline")
        if getattr(config, k) != ABConfig.model_fields[k].default
    }
    judge = {"judge settings"} if config.judge and config.judge.model_fields_set else set()
    extra = (
        [f"variants past the first {variants} ({len(config.variants)} in all)"]
        if len(config.variants) > variants
        else []
    )
    return sorted(sampling | settings | judge) + extra


def load_items(config: ABConfig) -> list[Item]:
    """The dataset's rows as items, every template placeholder and per-row assertion checked first."""
    path = dataset_path(config)
    if path is None:
        rows, where = config.dataset, "dataset"
    else:
        rows, where = _read_rows(path), str(path)
    if not rows:
        raise ConfigError(f"{where} has no rows. Fix: add at least one item.")
    items = []
    for number, row in enumerate(rows[: config.limit] if config.limit else rows, 1):
        if not isinstance(row, dict):
            raise ConfigError(f"{where} row {number} is {type(row).__name__}, not a mapping of fields.")
        row = dict(row)
        checks = row.pop("assert", None) or []
        if isinstance(checks, str):
            try:
                checks = json.loads(checks)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where} row {number}: 'assert' is not a JSON list: {exc}") from None
        try:
            assertions = tuple(Assertion.model_validate(c) for c in (checks if isinstance(checks, list) else [checks]))
        except ValidationError as exc:
            raise ConfigError(
                f"{where} row {number}: bad assertion: {exc.errors()[0]['msg']} "
                f"(valid types: {', '.join(ASSERTION_TYPES)})."
            ) from None
        item_id = str(row.pop("id", None) or number)
        items.append(Item(item_id, {k: "" if v is None else v for k, v in row.items()}, assertions))
    columns = set(items[0].vars)
    for template, owner in [(config.prompt, "prompt"), *((v.template, f"variant {v.name!r}") for v in config.variants)]:
        missing = _placeholders(template or "") - columns
        if missing:
            raise ConfigError(
                f"{owner} uses {sorted(missing)} but {where} has the columns {sorted(columns)}. "
                "Fix: rename the placeholder or add the column (write {{ and }} for literal braces)."
            )
    return items


def render(variant: Variant, config: ABConfig, item: Item) -> list[dict]:
    """The messages one variant sends for one item: its system prompt, then the prompt filled from the item."""
    messages = [{"role": "system", "content": variant.system}] if variant.system else []
    messages.append({"role": "user", "content": (variant.template or config.prompt).format_map(item.vars)})
    return messages
