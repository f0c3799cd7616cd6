"""The measurement capability: how fast and how good, with statistics. The serving benchmark (bench, bench_report,
placement), the tool-call scores (toolseval on the project's cases, bfcl on BFCL v4), prompt A/B tests (abconfig,
abtest, abreport), the flag tuner (tune_plan, tune) and the comparison of checkpoints (compare_request,
compare_tasks, compare, compare_report, verdict). They are one group because each runs load or tasks against a
server and reports numbers with intervals, on the shared stats and store. Nothing is re-exported: import the module,
e.g. `from workbench.measurement import bench`.
"""
