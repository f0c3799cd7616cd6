"""reference.py is the reference case, said once: the seed article's Qwen3-14B, quantized with GPTQ to INT4 in
groups of 128, served by vLLM at a 32K context on one 24 GB RTX 3090. The planner's defaults, the Plan tab, the
notebook planner and `workbench compare`'s memory plan start from it; docs/rtx3090.md walks it step by step."""

MODEL = "Qwen3-14B"
GPU = "RTX 3090"
QUANT = "gptq-int4"
GROUP_SIZE = 128
MAX_MODEL_LEN = 32_768
