"""The workbench's pictures, eleven of them (the eleventh: a context-reliability map, recall over length ×
depth): the GPU memory bar of a plan, the concurrency-vs-context curve,
latency CDFs and the throughput-vs-concurrency curve of a benchmark, the pass rates and spreads of an A/B
report, the perplexity of checkpoints side by side, and a comparison's three (each task's difference with its
interval, the candidates' latency CDFs, their memory bars on one GPU), and a daily report's measures per day with
its alerts circled; `svg` writes any of them as inline SVG.
Each function takes a result as data (its fields, dicts and lists) and returns a matplotlib Figure (no pyplot
state, so threads in the UI can draw at once); the faces call them on their results, and a result never draws
itself, except that a comparison's HTML page embeds its figures. A leaf: it imports nothing of the workbench.
The Gradio tabs show a figure in gr.Plot and a notebook shows it inline.
"""

import io

GIB = 2**30


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def memory_bar(plan, gpu, title: str | None = None):
    """One GPU's memory as a stacked bar (a planner Plan's bytes on a hardware.GpuSpec): weights, activation,
    overheads, KV cache and headroom."""
    gib = GIB
    parts = [
        ("weights", plan.weights_bytes / gib, "#4C72B0"),
        ("activation", plan.activation_bytes / gib, "#DD8452"),
        ("non-torch + CUDA graphs", (plan.non_torch_bytes + plan.cuda_graph_bytes) / gib, "#937860"),
        ("KV cache", plan.kv_cache_bytes / gib, "#55A868"),
        ("headroom (1 − gmu)", max(0.0, gpu.total_gib - plan.requested_bytes / gib), "#CCCCCC"),
    ]
    fig = _figure(8, 2.4)
    ax = fig.subplots()
    left = 0.0
    for label, value, color in parts:
        ax.barh([0], [value], left=left, color=color, label=f"{label} {value:.2f} GiB")
        left += value
    ax.axvline(gpu.total_gib, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, max(gpu.total_gib, left) * 1.02)
    ax.set_yticks([])
    ax.set_xlabel(f"GiB on one {gpu.name} ({gpu.total_gib} GiB visible to CUDA)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def concurrency_curve(rows: list, model: str, gpu: str):
    """Requests of full length that fit at once, per max_model_len (the planner's ContextPoints, sweeps.py)."""
    fig = _figure(8, 3)
    ax = fig.subplots()
    xs = [r.max_model_len for r in rows]
    ax.plot(xs, [r.max_concurrency for r in rows], marker="o")
    ax.axhline(1.0, color="red", linewidth=0.8, linestyle=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [f"{x // 1024}K" for x in xs])
    ax.set_xlabel("max_model_len (tokens)")
    ax.set_ylabel("requests at full length")
    ax.set_title(f"{model} on {gpu}: how many full-length requests fit at once")
    return fig


def latency_cdf(report: dict):
    """TTFT and end-to-end latency CDFs, one line per load level of a bench.run report, with the
    TTFT SLO drawn where one was given."""
    fig = _figure(10, 3.2)
    axes = fig.subplots(1, 2)
    slo = report.get("slo", {})
    for ax, metric, label in (
        (axes[0], "ttft_ms", "time to first token (ms)"),
        (axes[1], "e2e_ms", "end-to-end latency (ms)"),
    ):
        for level in report["levels"]:
            values = sorted(level["samples"][metric])
            if values:
                ys = [(i + 1) / len(values) for i in range(len(values))]
                ax.step(values, ys, where="post", label=level["load"])
        if metric == "ttft_ms" and slo.get("ttft_ms"):
            ax.axvline(slo["ttft_ms"], color="red", linestyle=":", linewidth=1, label=f"SLO {slo['ttft_ms']:g} ms")
        ax.set(xlabel=label, ylabel="share of requests (CDF)", ylim=(0, 1.02))
        ax.legend(fontsize=8, loc="lower right")
    return fig


def throughput_curve(report: dict):
    """Against concurrency: output tokens/s (left), and requests/s with goodput (right)."""
    levels = [lv for lv in report["levels"] if lv["concurrency"]]
    fig = _figure(10, 3.2)
    tokens, requests = fig.subplots(1, 2)
    if not levels:  # a request-rate run has one level and no concurrency axis
        for ax in (tokens, requests):
            ax.text(0.5, 0.5, "a request-rate run has no concurrency axis", ha="center", va="center")
            ax.set_axis_off()
        return fig
    xs = [lv["concurrency"] for lv in levels]
    tokens.plot(xs, [lv["output_tok_s"] for lv in levels], marker="o")
    tokens.set(xlabel="concurrent requests", ylabel="output tokens/s", xticks=xs, ylim=(0, None))
    requests.plot(xs, [lv["req_s"] for lv in levels], marker="^", color="#999999", label="completed")
    requests.plot(
        xs,
        [lv["goodput_req_s"] for lv in levels],
        marker="s",
        linestyle="--",
        color="#55A868",
        label="goodput (met the SLOs)",
    )
    requests.set(xlabel="concurrent requests", ylabel="requests/s", xticks=xs, ylim=(0, None))
    requests.legend(fontsize=8, loc="lower right")
    return fig


def ab_chart(report):
    """An A/B report (abreport.ABReport): pass rate with its Wilson interval, and latency and answer-length
    spreads, per variant."""
    fig = _figure(11, 3.4)
    rate, latency, tokens = fig.subplots(1, 3)
    summaries = list(report.variants.values())
    xs = range(len(summaries))
    rates = [v.pass_rate * 100 for v in summaries]
    low = [r - v.interval[0] * 100 for r, v in zip(rates, summaries)]
    high = [v.interval[1] * 100 - r for r, v in zip(rates, summaries)]
    rate.bar(xs, rates, yerr=[low, high], capsize=6, color="#4c78a8")
    rate.set(
        xticks=list(xs),
        xticklabels=report.names,
        ylim=(0, 100),
        ylabel="pass rate (%)",
        title=f"pass rate, {report.config.confidence:.0%} Wilson CI",
    )
    for axis, attribute, label in (
        (latency, "latency_s", "latency (s)"),
        (tokens, "completion_tokens", "answer tokens"),
    ):
        data = [
            [getattr(t, attribute) for t in report.trials if t.variant == name and t.ok] or [0] for name in report.names
        ]
        axis.boxplot(data, tick_labels=report.names)
        axis.set(ylabel=label, title=label.split(" (")[0] + " per trial")
    return fig


def perplexity_chart(rows: list[dict]):
    """quality.quality_report's rows: perplexity per checkpoint, with its increase over the first."""
    fig = _figure(8, 3)
    ax = fig.subplots()
    names = [r["name"] for r in rows]
    values = [r["ppl"] for r in rows]
    bars = ax.bar(range(len(rows)), values, color=["#4C72B0", "#55A868", "#DD8452", "#8172B3"][: len(rows)])
    for bar, r in zip(bars, rows):
        delta = r.get("ppl_increase")
        ax.annotate(
            f"{r['ppl']:.2f}" + (f"\n(+{delta:.2f})" if delta else ""),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set(
        xticks=range(len(rows)),
        xticklabels=names,
        ylabel="perplexity (lower is better)",
        ylim=(0, max(values) * 1.25),
        title="perplexity through the served engine, held-out text",
    )
    return fig


_COLORS = ["#4C72B0", "#55A868", "#DD8452", "#8172B3", "#C44E52", "#937860"]


def quality_deltas(rows: list[dict]):
    """A comparison's verdicts (verdict.TaskVerdict.as_dict rows): per task, each candidate's difference from the
    baseline with its interval, drawn so that right is better (perplexity's rise is drawn as a loss), with the
    margin a loss is judged against dotted."""
    rows = [r for r in rows if r["difference"] is not None]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig = _figure(8, 0.9 + 0.55 * len(rows) + 0.3 * len(tasks))
    ax = fig.subplots()
    labels, y = [], 0
    for task in tasks:
        for r in [r for r in rows if r["task"] == task]:
            sign = -1 if r["kind"] == "ppl" else 1  # a higher perplexity is worse
            low, high = sorted(sign * 100 * v for v in r["interval"])
            value = sign * 100 * r["difference"]
            color = {"loss": "#C44E52", "gain": "#55A868"}.get(r["outcome"], "#4C72B0")
            ax.errorbar([value], [y], xerr=[[value - low], [high - value]], fmt="o", color=color, capsize=4)
            ax.plot([-100 * r["margin"]], [y], marker="|", markersize=14, color="#999999")
            labels.append(f"{task} · {r['candidate']}")
            y += 1
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("difference from the baseline: points of pass rate, or % of perplexity (right is better)")
    return fig


def latency_cdfs(benches: dict):
    """TTFT and TPOT CDFs of several candidates' bench.run reports ({name: report}), each at its first load level."""
    fig = _figure(10, 3.2)
    axes = fig.subplots(1, 2)
    for ax, metric, label in (
        (axes[0], "ttft_ms", "time to first token (ms)"),
        (axes[1], "tpot_ms", "time per output token (ms)"),
    ):
        for (name, report), color in zip(benches.items(), _COLORS * 4):
            level = report["levels"][0]
            values = sorted(level["samples"][metric])
            if values:
                ax.step(
                    values,
                    [(i + 1) / len(values) for i in range(len(values))],
                    where="post",
                    color=color,
                    label=f"{name} ({level['load']})",
                )
        ax.set(xlabel=label, ylabel="share of requests (CDF)", ylim=(0, 1.02))
        ax.legend(fontsize=8, loc="lower right")
    return fig


def memory_bars(rows: list[dict]):
    """Several candidates' memory plans on one GPU (compare.plan_memory rows, with "name"): stacked bars of
    weights, activation, overheads and KV cache, and the card's total dashed."""
    fig = _figure(8, 1.0 + 0.5 * len(rows))
    ax = fig.subplots()
    parts = (
        ("weights", "weights_gib", "#4C72B0"),
        ("activation", "activation_gib", "#DD8452"),
        ("overheads", "overheads_gib", "#937860"),
        ("KV cache", "kv_cache_gib", "#55A868"),
    )
    for y, row in enumerate(rows):
        left = 0.0
        for label, key, color in parts:
            ax.barh([y], [row[key]], left=left, color=color, label=label if y == 0 else None)
            left += row[key]
    total = rows[0]["total_gib"]
    ax.axvline(total, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), [f"{r['name']} ({r['quant']})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"GiB on one {rows[0]['gpu']} ({total} GiB); the KV cache is what is left of the budget")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=8, frameon=False)
    return fig


def recall_map(context_map: dict, title: str = ""):
    """A context-reliability map (one of context.grid's `maps`): recall of the planted facts per length × depth,
    each cell with its count found of asked; red where recall falls, green where it holds."""
    grid = context_map["grid"]
    lengths = sorted({g["length"] for g in grid})
    depths = sorted({g["depth"] for g in grid})
    values = [
        [next((g["recall"] for g in grid if g["length"] == n and g["depth"] == d), None) for d in depths]
        for n in lengths
    ]
    fig = _figure(max(6.0, 1.6 + 1.1 * len(depths)), max(3.0, 1.4 + 0.55 * len(lengths)))
    ax = fig.subplots()
    image = ax.imshow(
        [[float("nan") if v is None else v for v in row] for row in values],
        cmap="RdYlGn",
        vmin=0,
        vmax=1,
        aspect="auto",
        origin="lower",
    )
    for i, n in enumerate(lengths):
        for j, d in enumerate(depths):
            g = next((g for g in grid if g["length"] == n and g["depth"] == d), None)
            if g and g["n"]:
                ax.text(j, i, f"{g['found']}/{g['n']}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(depths)), [f"{d:g} %" for d in depths])
    ax.set_yticks(range(len(lengths)), [f"{n // 1024}K" if n % 1024 == 0 else f"{n:,}" for n in lengths])
    ax.set_xlabel("depth of the planted facts in the document")
    ax.set_ylabel("context length (tokens)")
    fig.colorbar(image, ax=ax, label="recall (found / asked)")
    ax.set_title(title or context_map.get("headline", ""), fontsize=8, wrap=True)
    return fig


def svg(fig) -> str:
    """A figure as inline SVG (no XML header), for a page that must open offline."""
    out = io.StringIO()
    fig.savefig(out, format="svg")
    text = out.getvalue()
    return text[text.index("<svg") :]


def report_chart(series: dict, measure: str, day: str, alerts: list[dict]):
    """A daily report's measure per dimension value over its last weeks (facts' `series`: value → [{day,
    measure: number}]), the report's day marked and each alert circled in red."""
    fig = _figure(8, 3.2)
    ax = fig.subplots()
    for color, (value, points) in zip(_COLORS * 3, series.items()):
        days = [p["day"][5:] for p in points]
        ax.plot(days, [p.get(measure) for p in points], color=color, label=value, linewidth=1.4)
        for alert in alerts:
            if alert["value"] == value and alert["measure"] == measure and day[5:] in days:
                ax.scatter(
                    [day[5:]], [alert["actual"]], s=90, facecolors="none", edgecolors="#C44E52", linewidths=2, zorder=3
                )
    ticks = list(next(iter(series.values()), []))
    ax.set_xticks(range(0, len(ticks), 7), [p["day"][5:] for p in ticks[::7]], fontsize=8)
    ax.axvline(len(ticks) - 1, color="#999999", linestyle=":", linewidth=1)
    ax.set(ylabel=measure, title=f"{measure} per day, the last {len(ticks)} days to {day} (alerts circled)")
    ax.legend(loc="upper left", fontsize=7, ncol=min(6, len(series)), frameon=False)
    return fig
