"""llm-compressor's GPTQ (W4A16, compressed-tensors), run inside its own environment (bench/.venvs/llmcompressor,
made by bench/peers.py): bench/quantize.py writes a job file and starts this with that environment's Python.
The job names the source checkpoint, the output folder, the bits, group size and dampening, and the calibration
texts, the same ones GPTQModel gets. Prints one JSON line: seconds and peak resident memory.

    bench/.venvs/llmcompressor/bin/python bench/llmcompressor_gptq.py JOB.json
"""

import json
import resource
import sys
import time


def main(job_path: str) -> None:
    job = json.loads(open(job_path).read())
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.gptq import GPTQModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(job["source"])
    model = AutoModelForCausalLM.from_pretrained(job["source"], dtype="auto")
    texts = Dataset.from_dict({"text": job["samples"]})
    data = texts.map(
        lambda batch: tokenizer(batch["text"], add_special_tokens=False, truncation=True, max_length=job["seq_len"]),
        batched=True,
        remove_columns=["text"],
    )
    weights = {
        "num_bits": job["bits"],
        "type": "int",
        "symmetric": True,
        "strategy": "group",
        "group_size": job["group_size"],
    }
    recipe = GPTQModifier(
        config_groups={"group_0": {"targets": ["Linear"], "weights": weights}},
        ignore=["lm_head"],
        dampening_frac=job["damp"],
        actorder=None,
    )  # GPTQModel's desc_act=False: no reordering
    oneshot(
        model=model,
        dataset=data,
        recipe=recipe,
        max_seq_length=job["seq_len"],
        num_calibration_samples=len(job["samples"]),
    )
    model.save_pretrained(job["out"], save_compressed=True)
    tokenizer.save_pretrained(job["out"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "peak_rss_gib": round(peak, 2)}))


if __name__ == "__main__":
    main(sys.argv[1])
