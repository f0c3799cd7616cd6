"""The quantization capability: a bf16 checkpoint turned into a GPTQ or round-to-nearest one, and what that cost. The
run in a child process (quantize), its layer-by-layer plan (quantize_plan), the text it calibrates on
(quantize_calibration) and the quality measured through the served engine (quality). They are one group because they
answer one question, how much smaller and how much worse, and change together when GPTQModel or a weight format
does. Nothing is re-exported: import the module, e.g. `from workbench.quantization import quantize`.
"""
