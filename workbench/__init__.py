"""workbench: serve a 14B-class model on one consumer GPU, quantized, measured and useful.

The core modules (everything directly under `workbench/`) never import gradio, and import
vllm, torch and gptqmodel only inside the functions that need them, so `import workbench.memory`
is instant on a machine without a GPU stack.
"""

__version__ = "0.1.0"
