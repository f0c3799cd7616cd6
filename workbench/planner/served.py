"""served.py holds the plan against a running engine: what the server built (its KV cache pool, block size and
tokens, as the caller read them from it) against what the planner computes for that pool, fact by fact. It takes
the server's data, never a client: the face asks the server (client.Client.served_cache) and passes what it said.
"""

from dataclasses import asdict, dataclass

from workbench.errors import WorkbenchError
from workbench.export import Exportable
from workbench.planner.budget import GIB, kv_bytes_per_token, kv_cache_tokens, max_concurrency
from workbench.planner.gpu_plan import Plan, plan
from workbench.planner.request import PlanRequest
from workbench.planner.vllm_facts import DEFAULT_VLLM_VERSION, ServeSettings
from workbench.serving import hardware, models
from workbench.serving.model_catalog import ModelSpec


@dataclass(frozen=True)
class FactCheck:
    """One fact, planned and reported. `reported`/`match` None: the server does not report it."""

    fact: str
    planned: float | int
    reported: float | int | None
    match: bool | None


def compare_with_served(spec: ModelSpec, served: dict, plan_: Plan | None = None) -> tuple[FactCheck, ...]:
    """Planned vs reported for a running engine (`served` as Client.served_cache() returns it). The token count is
    checked on the server's own pool and block size, so it must match exactly; with `plan_`, a GPU plan's KV cache
    too (within 0.3 GiB)."""
    per_token = kv_bytes_per_token(spec, served["cache_dtype"])
    tokens = kv_cache_tokens(served["kv_cache_bytes"], per_token, served["block_size"])
    rows = [
        FactCheck("kv_bytes_per_token", per_token, None, None),
        FactCheck("kv_cache_tokens", tokens, served["kv_cache_tokens"], tokens == served["kv_cache_tokens"]),
    ]
    if served.get("max_model_len"):
        conc = round(max_concurrency(tokens, served["max_model_len"], served["block_size"]), 2)
        rows.append(
            FactCheck(
                "max_concurrency",
                conc,
                round(served["max_concurrency"], 2),
                conc == round(served["max_concurrency"], 2),
            )
        )
    if plan_ is not None:
        planned, reported = plan_.kv_cache_bytes / GIB, served["kv_cache_bytes"] / GIB
        rows.append(FactCheck("kv_cache_gib", round(planned, 2), round(reported, 2), abs(planned - reported) <= 0.3))
    return tuple(rows)


@dataclass(frozen=True)
class Comparison(Exportable):
    """The planner against a running engine: each fact planned and reported."""

    url: str
    served: dict
    rows: tuple[FactCheck, ...]

    @property
    def ok(self) -> bool:
        return all(r.match is not False for r in self.rows)

    def as_dict(self) -> dict:
        return {"served": self.served, "rows": [asdict(r) for r in self.rows]}

    def csv_rows(self) -> tuple[list[str], list[list]]:
        keys = ["fact", "planned", "reported", "match"]
        return keys, [[getattr(r, k) for k in keys] for r in self.rows]

    def to_text(self) -> str:
        lines = [
            f"{self.served['model']} at {self.url} ({self.served['root']})",
            f"{'fact':<20} {'planned':>12} {'reported':>12}  match",
        ]
        for r in self.rows:
            mark = "" if r.match is None else ("yes" if r.match else "NO")
            lines.append(f"{r.fact:<20} {r.planned!s:>12} {'' if r.reported is None else r.reported!s:>12}  {mark}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        rows = [
            f"| {r.fact} | {r.planned} | {'' if r.reported is None else r.reported} | "
            f"{'' if r.match is None else ('✅' if r.match else '❌')} |"
            for r in self.rows
        ]
        return (
            f"**{self.served['model']}** at {self.url}\n\n| fact | planned | reported | match |\n"
            "|---|---|---|---|\n" + "\n".join(rows)
        )


def compare(served: dict, request: PlanRequest | None = None, url: str = "the server") -> Comparison:
    """What a running engine built (`served`: Client.served_cache() of the server at `url`) against the plan for
    it. With a GPU in the request, also the GPU plan's KV cache for the served settings."""
    if not served.get("root"):
        raise WorkbenchError(f"the server at {url} does not say which folder it serves.")
    spec = models.find_model(served["root"])
    gpu_plan = None
    if request is not None and request.gpu is not None:
        settings = ServeSettings(
            max_model_len=served["max_model_len"],
            kv_cache_dtype=served["cache_dtype"],
            gpu_memory_utilization=served["gpu_memory_utilization"],
            vllm_version=request.vllm_version or DEFAULT_VLLM_VERSION,
        )
        gpu_plan = plan(
            spec,
            hardware.find_gpu(request.gpu, request.gpu_total_gib),
            request.quant,
            settings,
            request.group_size,
            request.weights_gib,
        )
    return Comparison(url, served, compare_with_served(spec, served, gpu_plan))
