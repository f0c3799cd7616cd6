"""What a GPU looks like to torch, for the planner's GPU catalog: memory as cudaMemGetInfo reports it,
the memory a CUDA context (and cuBLAS) takes outside torch's allocator, the device-to-device copy
bandwidth and a bf16 matmul rate. Needs a CUDA GPU; writes bench/results/gpu_facts_<name>.json.

    python bench/gpu_facts.py [--out DIR]
"""

import argparse
import json
import platform
import time
from pathlib import Path

GIB = 2**30


def measure() -> dict:
    import torch

    torch.cuda.init()
    props = torch.cuda.get_device_properties(0)
    free0, total = torch.cuda.mem_get_info()
    x = torch.empty(1, device="cuda")  # a context and the caching allocator, nothing else
    torch.cuda.synchronize()
    free1, _ = torch.cuda.mem_get_info()
    context_bytes = (total - free1) - torch.cuda.memory_reserved()
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    (a @ a).sum().item()  # cuBLAS handle and workspace
    torch.cuda.synchronize()
    free2, _ = torch.cuda.mem_get_info()
    after_cublas_bytes = (total - free2) - torch.cuda.memory_reserved()

    n = 2 * GIB
    src, dst = torch.empty(n, dtype=torch.uint8, device="cuda"), torch.empty(n, dtype=torch.uint8, device="cuda")
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        dst.copy_(src)
    torch.cuda.synchronize()
    copy_gb_s = 2 * n * reps / (time.perf_counter() - start) / 1e9  # bytes read + written
    del src, dst

    m = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        m @ m
    torch.cuda.synchronize()
    start, reps = time.perf_counter(), 10
    for _ in range(reps):
        m @ m
    torch.cuda.synchronize()
    tflops = 2 * 8192**3 * reps / (time.perf_counter() - start) / 1e12
    del x
    return {
        "name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "multiprocessors": props.multi_processor_count,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "total_bytes": total,
        "total_gib": round(total / GIB, 2),
        "free_before_init_gib": round(free0 / GIB, 2),
        "non_torch_after_context_gib": round(context_bytes / GIB, 3),
        "non_torch_after_cublas_gib": round(after_cublas_bytes / GIB, 3),
        "copy_gb_s_read_plus_write": round(copy_gb_s),
        "bf16_matmul_tflops_8192": round(tflops),
        "host": platform.node(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    facts = measure()
    out = Path(args.out) / f"gpu_facts_{facts['name'].replace(' ', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps(facts, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
