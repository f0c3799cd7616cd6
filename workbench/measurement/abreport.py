"""abreport.py turns the trials of an A/B run into what a person reads: pass rate per variant with
its Wilson interval, each variant against the baseline (paired difference, bootstrap interval,
exact McNemar test, items needed), latency and token spreads, judge votes, a verdict in words, the
inputs × variants matrix, and CSV/JSON/Markdown exports (plots.ab_chart draws it). It sends no requests.

The unit of analysis is the item: with repeats, an item's score is the share of its repeats that
passed, and a trial that got no answer counts as a failure (the report says how many did).
"""

from dataclasses import dataclass

from workbench import stats
from workbench.export import Exportable

PASS, FAIL, NO_ANSWER = "✅", "❌", "⚠"


@dataclass(frozen=True)
class VariantSummary:
    name: str
    items: int
    trials: int
    passed_trials: int
    pass_rate: float  # mean of per-item scores
    interval: tuple[float, float]
    errors: int  # trials that got no answer
    cached: int
    failures_by_check: dict
    latency_s: dict
    ttft_s: dict
    completion_tokens: dict

    def as_dict(self) -> dict:
        return {**self.__dict__, "interval": list(self.interval)}


class ABReport(Exportable):
    """An A/B run's trials and what they mean; saves as JSON (everything), CSV (one row per trial) and Markdown."""

    def __init__(self, config, items, trials, judgements=(), wall_s: float = 0.0):
        self.config, self.items, self.trials, self.judgements = config, list(items), list(trials), list(judgements)
        self.wall_s = wall_s
        self.names = [v.name for v in config.variants]
        self._by_cell: dict[tuple[str, str], list] = {}
        for trial in sorted(self.trials, key=lambda t: t.repeat):
            self._by_cell.setdefault((trial.variant, trial.item), []).append(trial)
        self.variants = {name: self._summarize(name) for name in self.names}
        self.comparisons = [
            stats.compare_paired(
                config.baseline_name, name, self.scores(config.baseline_name), self.scores(name), config.confidence
            )
            for name in self.names
            if name != config.baseline_name
        ]

    # -- numbers ------------------------------------------------------------------------------
    def cell(self, variant: str, item: str) -> list:
        return self._by_cell.get((variant, item), [])

    def scores(self, variant: str) -> list[float]:
        """Per item, in dataset order: the share of its repeats that passed."""
        out = []
        for item in self.items:
            trials = self.cell(variant, item.id)
            out.append(sum(t.passed for t in trials) / len(trials) if trials else 0.0)
        return out

    def _summarize(self, name: str) -> VariantSummary:
        trials = [t for t in self.trials if t.variant == name]
        answered = [t for t in trials if t.ok]
        scores = self.scores(name)
        failures: dict[str, int] = {}
        for trial in answered:
            for c in trial.checks:
                if not c.passed:
                    kind = c.label.split(" ")[0]
                    failures[kind] = failures.get(kind, 0) + 1
        return VariantSummary(
            name=name,
            items=len(scores),
            trials=len(trials),
            passed_trials=sum(t.passed for t in trials),
            pass_rate=sum(scores) / len(scores) if scores else 0.0,
            interval=stats.wilson_interval(sum(scores), len(scores), self.config.confidence),
            errors=len(trials) - len(answered),
            cached=sum(t.cached for t in trials),
            failures_by_check=failures,
            latency_s=stats.describe(t.latency_s for t in answered),
            ttft_s=stats.describe(t.ttft_s for t in answered),
            completion_tokens=stats.describe(t.completion_tokens for t in answered),
        )

    def judge_summary(self) -> dict:
        """Per challenger: judge wins, losses and ties against the baseline, with a sign test (the
        exact McNemar test is that sign test on the decisive votes)."""
        out = {}
        for name in self.names:
            votes = [j for j in self.judgements if j.variant == name]
            if not votes:
                continue
            wins = sum(j.winner == name for j in votes)
            losses = sum(j.winner == j.baseline for j in votes)
            decisive = wins + losses
            out[name] = {
                "baseline": self.config.baseline_name,
                "items": len(votes),
                "wins": wins,
                "losses": losses,
                "ties": len(votes) - decisive,
                "win_share": wins / decisive if decisive else None,
                "interval": list(stats.wilson_interval(wins, decisive, self.config.confidence)),
                "p_value": stats.mcnemar_exact(losses, wins),
            }
        return out

    @property
    def warnings(self) -> list[str]:
        lines = []
        errors = [t for t in self.trials if not t.ok]
        if errors:
            lines.append(
                f"{len(errors)} of {len(self.trials)} trials got no answer and count as failures "
                f"(first: {errors[0].variant} on item {errors[0].item}: {errors[0].error})."
            )
        sampled = [
            v.name for v in self.config.variants if v.params(self.config.defaults).get("temperature", 1.0) != 0
        ]  # unset: the server samples
        if self.config.repeats == 1 and sampled:
            lines.append(
                "a variant samples (temperature > 0) with one repeat per item; repeats: 3 or more would "
                "separate the prompt's effect from sampling noise."
            )
        return lines

    @property
    def verdict(self) -> str:
        judged = [
            f"Judge: {name} won {v['wins']}, lost {v['losses']}, tied {v['ties']} against {v['baseline']} "
            f"(sign test p = {v['p_value']:.3g})."
            for name, v in self.judge_summary().items()
        ]
        return "\n".join([c.verdict for c in self.comparisons] + judged + [f"Note: {w}" for w in self.warnings])

    # -- what people read -------------------------------------------------------------------
    def summary(self) -> dict:
        """The numbers without the trials: what `workbench ab run --json` prints."""
        return {
            "name": self.config.name,
            "items": len(self.items),
            "repeats": self.config.repeats,
            "confidence": self.config.confidence,
            "baseline": self.config.baseline_name,
            "variants": {name: v.as_dict() for name, v in self.variants.items()},
            "comparisons": [c.as_dict() for c in self.comparisons],
            "judge": self.judge_summary() or None,
            "verdict": self.verdict,
            "warnings": self.warnings,
            "wall_s": round(self.wall_s, 2),
        }

    def as_dict(self) -> dict:
        return {
            **self.summary(),
            "config": self.config.model_dump(by_alias=True, mode="json"),
            "dataset": [{"id": i.id, "vars": i.vars} for i in self.items],
            "trials": [t.as_dict() for t in self.trials],
            "judgements": [j.__dict__ for j in self.judgements],
        }

    def table(self) -> tuple[list[str], list[list]]:
        """One row per variant: pass rate, interval, errors, latency and tokens."""
        level = f"{self.config.confidence:.0%}"
        headers = [
            "variant",
            "pass rate",
            f"{level} CI",
            "items",
            "no answer",
            "cached",
            "latency p50 (s)",
            "latency p90 (s)",
            "tokens p50",
        ]
        rows = []
        for v in self.variants.values():
            lat, tok = v.latency_s, v.completion_tokens
            rows.append(
                [
                    v.name,
                    f"{v.pass_rate:.1%}",
                    f"{v.interval[0]:.1%} – {v.interval[1]:.1%}",
                    v.items,
                    v.errors,
                    v.cached,
                    _num(lat["p50"], 2),
                    _num(lat["p90"], 2),
                    _num(tok["p50"], 0),
                ]
            )
        return headers, rows

    def matrix(self, width: int = 160) -> tuple[list[str], list[list[str]]]:
        """Rows are items, columns are variants; each cell is the mark, the first answer and what failed."""
        columns = list(self.items[0].vars) if self.items else []
        headers = ["item", *columns, *self.names]
        rows = []
        for item in self.items:
            row = [item.id, *(str(item.vars.get(c, "")) for c in columns)]
            for name in self.names:
                trials = self.cell(name, item.id)
                row.append(_cell(trials, width))
            rows.append(row)
        return headers, rows

    def to_markdown(self) -> str:
        headers, rows = self.table()
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
        return "\n".join(lines) + "\n\n" + self.verdict

    def csv_rows(self) -> tuple[list[str], list[list]]:
        """One row per trial, with the item's columns, so a spreadsheet can redo any of the numbers."""
        columns = list(self.items[0].vars) if self.items else []
        by_id = {i.id: i for i in self.items}
        header = [
            "item",
            *columns,
            "variant",
            "repeat",
            "passed",
            "ok",
            "error",
            "output",
            "failed_checks",
            "latency_s",
            "ttft_s",
            "prompt_tokens",
            "completion_tokens",
            "attempts",
            "cached",
        ]
        order = {item.id: n for n, item in enumerate(self.items)}
        rows = []
        for t in sorted(self.trials, key=lambda t: (order[t.item], self.names.index(t.variant), t.repeat)):
            item = by_id[t.item]
            rows.append(
                [
                    t.item,
                    *(item.vars.get(c, "") for c in columns),
                    t.variant,
                    t.repeat,
                    t.passed,
                    t.ok,
                    t.error or "",
                    t.output,
                    "; ".join(_failure(c) for c in t.checks if not c.passed),
                    f"{t.latency_s:.4f}",
                    "" if t.ttft_s is None else f"{t.ttft_s:.4f}",
                    t.prompt_tokens,
                    t.completion_tokens,
                    t.attempts,
                    t.cached,
                ]
            )
        return header, rows


def _num(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _failure(check) -> str:
    return f"{check.label} ({check.detail})" if check.detail else check.label


def _cell(trials, width: int) -> str:
    if not trials:
        return ""
    first = trials[0]
    passed = sum(t.passed for t in trials)
    mark = PASS if passed * 2 > len(trials) else FAIL
    if not first.ok:
        return f"{NO_ANSWER} {first.error or 'no answer'}"[:width]
    text = " ".join(first.output.split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    share = f" {passed}/{len(trials)}" if len(trials) > 1 else ""
    failed = [_failure(c) for c in first.checks if not c.passed]
    return f"{mark}{share} {text}" + (f"  [failed: {'; '.join(failed)}]" if failed else "")
