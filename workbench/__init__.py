"""workbench: serve a 14B-class model on one consumer GPU, quantized, measured and useful.

The core modules (all of `workbench/` but its faces) never import gradio, and import
vllm, torch and gptqmodel only inside the functions that need them, so `import workbench.planner`
is instant on a machine without a GPU stack.
"""

__version__ = "0.1.0"

import os as _os

# GPTQModel's tokenizer package (tokenicer) sets HF_HOME to /tmp/tokenicer_hf_home when it is unset, which would
# move every later Hub lookup of this process out of the user's cache: name huggingface_hub's own default first.
_os.environ.setdefault(
    "HF_HOME", _os.path.join(_os.environ.get("XDG_CACHE_HOME", _os.path.expanduser("~/.cache")), "huggingface")
)
