"""Tiny random-weight models for checking the planner against the real vLLM CPU build.

Each is a real checkpoint (config, safetensors, the bundled tokenizer) with its own number of
layers, KV heads and head_dim; only the weights are random, which the memory arithmetic ignores.
"""

import shutil
from pathlib import Path

from workbench import models

# name: (model_type, layers, hidden, heads, kv_heads, head_dim, intermediate)
TINY = {
    "tiny-llama-l3-kv1-d32": ("llama", 3, 128, 4, 1, 32, 256),
    "tiny-llama-l5-kv4-d48": ("llama", 5, 192, 4, 4, 48, 384),
    "tiny-qwen3-l2-kv2-d128": ("qwen3", 2, 256, 4, 2, 128, 512),
}


def make_tiny_model(name: str, root: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, layers, hidden, heads, kv_heads, head_dim, inter = TINY[name]
    folder = root / name
    if (folder / "config.json").is_file():
        return folder
    bundled = models.prepare_bundled_model()
    vocab = models.read_config(bundled)["vocab_size"]
    config = AutoConfig.for_model(
        model_type, num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
        num_key_value_heads=kv_heads, head_dim=head_dim, intermediate_size=inter, vocab_size=vocab,
        max_position_embeddings=4096, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    for file in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(bundled / file, folder / file)
    return folder
