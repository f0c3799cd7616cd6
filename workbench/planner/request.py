"""request.py is what a person asks the planner: `PlanRequest`, as the CLI's flags, the Plan tab's form and the
Jupyter planner's widgets fill it in, and the weights format a request plans (`checkpoint_format`). It answers
nothing itself (planner.plan does) and reads nothing.
"""

from dataclasses import dataclass, field

from workbench import reference
from workbench.errors import ConfigError
from workbench.planner.budget import DEFAULT_GROUP_SIZE, QUANT_FORMATS
from workbench.planner.vllm_facts import ServeSettings
from workbench.serving.model_catalog import ModelSpec

DEFAULT_GPU = reference.GPU


@dataclass(frozen=True)
class PlanRequest:
    """What a person asks. `gpu` None: the log's GPU when a log gives its memory, else RTX 3090. `vllm_version`
    None: the log's, else vllm_facts.DEFAULT_VLLM_VERSION. A log is a file (`log_path`) or its text (`log_text`)."""

    model: str = reference.MODEL  # a reference models.find_model reads: catalog name, folder or Hub id
    revision: str | None = None  # of a Hub id
    gpu: str | None = None
    gpu_total_gib: float | None = None
    bandwidth_gbs: float | None = None
    quant: str | None = None  # None: the format the checkpoint declares, else bf16
    group_size: int | None = DEFAULT_GROUP_SIZE
    settings: ServeSettings = field(default_factory=ServeSettings)
    vllm_version: str | None = None
    weights_gib: float | None = None
    log_path: str | None = None
    log_text: str | None = None
    log_source: str | None = None  # how errors name the log ("the uploaded log"); default: as the CLI flag
    log_model: str | None = None  # the log's model, when the log's own name for it cannot be resolved here
    kv_space_gib: float | None = None  # with a CPU-build log: the VLLM_CPU_KVCACHE_SPACE to plan
    parallel: bool = False
    gpus_per_node: int = 8
    curve: bool = False  # also sweep max_model_len over sweeps.CONTEXTS
    fit_free: bool = False  # lower gpu_memory_utilization to what is free on the local GPU now (gpu="local")
    claim_tok_s: float | None = None
    claim_ttft_s: float | None = None


def checkpoint_format(spec: ModelSpec, quant: str | None, weights_gib: float | None = None) -> str:
    """The format to plan: the one the checkpoint declares (its quantization_config), else the asked one, else
    bf16. A declaration the planner cannot read is refused unless the weights are known."""
    if spec.declared_format:
        return spec.declared_format
    if spec.declared_quant and spec.weight_bytes is None and weights_gib is None:
        raise ConfigError(
            f"{spec.name} declares quant_method {spec.declared_quant!r} in its config.json, a format "
            f"the planner cannot size. Valid: {', '.join(QUANT_FORMATS)}. Fix: give the measured "
            'weights with --weights-gib (vLLM\'s "Model loading took … GiB").'
        )
    return quant or "bf16"
