"""model_catalog.py holds the config facts that decide memory (`ModelSpec`) and the catalog of well-known models
(`CATALOG`): each one's config.json facts, where its checkpoint is published, and its authors' quantized repos.
`catalog_entry` finds a catalog name or a catalog model's Hub id. Pure data: it reads no file and asks no server;
reading a checkpoint's own config.json, and every other kind of model reference, lives in models.py.
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ModelSpec:
    """The config facts that decide memory (from config.json)."""

    name: str
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    max_position_embeddings: int
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    kv_lora_rank: int = 0  # MLA (DeepSeek-V2/V3): one latent per layer instead of K and V heads
    qk_rope_head_dim: int = 0
    sliding_window: bool = False  # several KV groups: one formula does not hold
    weight_bytes: int | None = None  # exact, from a local checkpoint's safetensors headers
    declared_quant: str | None = None  # quantization_config's quant_method of a checkpoint (gptq, awq, ...)
    declared_format: str | None = None  # the same as a planner format (planner.budget.QUANT_FORMATS), when known
    declared_group_size: int | None = None
    weights_source: str | None = None  # where weight_bytes come from, in words
    family: str | None = None  # config.json's model_type: decides vLLM's reasoning parser
    chat_format: str | None = None  # what its chat template writes (chatml, llama3, mistral): the tool parser
    checkpoint: str | None = None  # what `vllm serve` loads: a Hugging Face repo id, or a local folder
    quantized_checkpoints: tuple[tuple[str, str], ...] = ()  # (quant format, repo id) published by the authors

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    def linear_params(self) -> int:
        """Parameters in the layers GPTQ/AWQ quantize: attention projections and the MLP/experts."""
        h, d = self.hidden_size, self.head_dim
        attention = h * self.num_heads * d * 2 + h * self.num_kv_heads * d * 2
        if self.num_experts:
            mlp = self.num_experts * 3 * h * self.moe_intermediate_size
        else:
            mlp = 3 * h * self.intermediate_size
        return self.num_layers * (attention + mlp)

    def other_params(self) -> int:
        """Embeddings, lm_head (unless tied), norms and routers: kept in 16 bits by GPTQ/AWQ."""
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        norms = self.num_layers * 2 * self.hidden_size + self.hidden_size
        router = self.num_layers * self.hidden_size * self.num_experts
        return embeddings + norms + router

    def total_params(self) -> int:
        return self.linear_params() + self.other_params()


def _spec(name, layers, hidden, inter, heads, kv, head_dim, vocab, tied, max_pos, **extra) -> ModelSpec:
    return ModelSpec(name, layers, hidden, inter, heads, kv, head_dim, vocab, tied, max_pos, **extra)


def _qwen3(name: str, *quantized: str, **extra) -> dict:
    """Qwen's own quantized Qwen3 repos (https://huggingface.co/Qwen): FP8 for every size; AWQ for 4B-32B,
    GPTQ-Int8 for 0.6B and 1.7B, GPTQ-Int4 for 30B-A3B (as listed when xorbitsai/inference#3436 switched to them)."""
    suffix = {"awq-int4": "AWQ", "gptq-int8": "GPTQ-Int8", "gptq-int4": "GPTQ-Int4", "fp8": "FP8"}
    repos = tuple((q, f"Qwen/{name}-{suffix[q]}") for q in (*quantized, "fp8"))
    return {"family": "qwen3", "checkpoint": f"Qwen/{name}", "quantized_checkpoints": repos, **extra}


def _qwen25(name: str) -> dict:
    """Qwen2.5 Instruct: Qwen publishes GPTQ-Int4, GPTQ-Int8 and AWQ repos for each size."""
    suffix = {"gptq-int4": "GPTQ-Int4", "gptq-int8": "GPTQ-Int8", "awq-int4": "AWQ"}
    return dict(
        family="qwen2",
        checkpoint=f"Qwen/{name}",
        quantized_checkpoints=tuple((q, f"Qwen/{name}-{s}") for q, s in suffix.items()),
    )


# Config facts from each model's config.json on its Hugging Face page.
CATALOG: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        _spec("Qwen3-0.6B", 28, 1024, 3072, 16, 8, 128, 151_936, True, 40_960, **_qwen3("Qwen3-0.6B", "gptq-int8")),
        _spec("Qwen3-1.7B", 28, 2048, 6144, 16, 8, 128, 151_936, True, 40_960, **_qwen3("Qwen3-1.7B", "gptq-int8")),
        _spec("Qwen3-4B", 36, 2560, 9728, 32, 8, 128, 151_936, True, 40_960, **_qwen3("Qwen3-4B", "awq-int4")),
        _spec("Qwen3-8B", 36, 4096, 12288, 32, 8, 128, 151_936, False, 40_960, **_qwen3("Qwen3-8B", "awq-int4")),
        _spec("Qwen3-14B", 40, 5120, 17408, 40, 8, 128, 151_936, False, 40_960, **_qwen3("Qwen3-14B", "awq-int4")),
        _spec("Qwen3-32B", 64, 5120, 25600, 64, 8, 128, 151_936, False, 40_960, **_qwen3("Qwen3-32B", "awq-int4")),
        _spec(
            "Qwen3-30B-A3B",
            48,
            2048,
            6144,
            32,
            4,
            128,
            151_936,
            False,
            40_960,
            **_qwen3("Qwen3-30B-A3B", "gptq-int4", family="qwen3_moe"),
            num_experts=128,
            experts_per_token=8,
            moe_intermediate_size=768,
        ),
        _spec(
            "Qwen2.5-1.5B-Instruct",
            28,
            1536,
            8960,
            12,
            2,
            128,
            151_936,
            True,
            32_768,
            **_qwen25("Qwen2.5-1.5B-Instruct"),
        ),
        _spec(
            "Qwen2.5-7B-Instruct", 28, 3584, 18944, 28, 4, 128, 152_064, False, 32_768, **_qwen25("Qwen2.5-7B-Instruct")
        ),
        _spec(
            "Qwen2.5-14B-Instruct",
            48,
            5120,
            13824,
            40,
            8,
            128,
            152_064,
            False,
            32_768,
            **_qwen25("Qwen2.5-14B-Instruct"),
        ),
        _spec(
            "Qwen2.5-32B-Instruct",
            64,
            5120,
            27648,
            40,
            8,
            128,
            152_064,
            False,
            32_768,
            **_qwen25("Qwen2.5-32B-Instruct"),
        ),
        # Meta's instruct repos are gated: accept the licence on the model page and log in before serving
        _spec(
            "Llama-3.1-8B",
            32,
            4096,
            14336,
            32,
            8,
            128,
            128_256,
            False,
            131_072,
            family="llama",
            checkpoint="meta-llama/Llama-3.1-8B-Instruct",
        ),
        _spec(
            "Llama-3.1-70B",
            80,
            8192,
            28672,
            64,
            8,
            128,
            128_256,
            False,
            131_072,
            family="llama",
            checkpoint="meta-llama/Llama-3.1-70B-Instruct",
        ),
        _spec(
            "Mistral-7B-v0.3",
            32,
            4096,
            14336,
            32,
            8,
            128,
            32_768,
            False,
            32_768,
            family="mistral",
            checkpoint="mistralai/Mistral-7B-Instruct-v0.3",
        ),
        # DeepSeek-V2-Lite: 27 layers, 64 experts (top-6) of 1408 plus 2 shared, MLA with a 512-wide latent
        _spec(
            "DeepSeek-V2-Lite",
            27,
            2048,
            10944,
            16,
            16,
            128,
            102_400,
            False,
            163_840,
            num_experts=66,
            experts_per_token=8,
            moe_intermediate_size=1408,
            kv_lora_rank=512,
            qk_rope_head_dim=64,
            family="deepseek_v2",
            checkpoint="deepseek-ai/DeepSeek-V2-Lite-Chat",
        ),
        # a Llama architecture with a ChatML template (its chat_template.jinja)
        _spec(
            "smollm2-135m-instruct",
            30,
            576,
            1536,
            9,
            3,
            64,
            49_152,
            True,
            8192,
            family="llama",
            chat_format="chatml",
            checkpoint="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
    ]
}


def catalog_entry(reference: str) -> ModelSpec | None:
    """A catalog name (case-insensitive, "-Instruct" optional), or the Hub id of a catalog model or of one of its
    authors' quantized checkpoints (that one declares its format)."""
    for spec in CATALOG.values():
        if reference == spec.checkpoint:
            return spec
        for quant, repo in spec.quantized_checkpoints:
            if reference == repo:
                return replace(
                    spec,
                    name=repo.split("/")[-1],
                    checkpoint=repo,
                    declared_quant=quant.split("-")[0],
                    declared_format=quant,
                    declared_group_size=128 if "int" in quant else None,
                    quantized_checkpoints=(),
                )
    wanted = reference.lower().removeprefix("qwen/").removeprefix("meta-llama/")
    for name, spec in CATALOG.items():
        if name.lower() == wanted or name.lower().removesuffix("-instruct") == wanted:
            return spec
    return None
