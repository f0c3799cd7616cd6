"""The serving capability: one vLLM server and the client that talks to it. Which model (the bundled one, the catalog,
the Hub) on which hardware, vLLM's serve flags, starting, leasing and stopping the process and reading what it says
about itself (engine, vllm_flags, startup_log, processes, gpu_lease, hub, models, model_catalog, hardware, doctor),
and the requests sent to it with what they give back (client, client_errors, reply, thinking). They are one group
because everything else in the workbench reaches a model only through them, and they change together when vLLM does.
Nothing is re-exported: import the module, e.g. `from workbench.serving import engine`.
"""
