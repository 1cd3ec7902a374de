"""Render the experiment registry as one self-contained HTML file (inline CSS, plots as base64
PNG, no external requests): per run kind a metric table with the best value in bold, deltas
against the kind's baseline run, metric-vs-parameter curves, per-segment breakdowns, and any
curves a run carries (`extra["curves"]`, e.g. bandit regret).

Conventions runs may follow (see `registry.record_run`):
- extra["segments"] = {segment: {metric: value}} -> a segment table and grouped bars;
- extra["curves"] = {title: {"x": [...], "y": {series: [...]}, "xlabel": str, "ylabel": str}};
- config["baseline"] = true marks the run that deltas are measured against (default: the first).
"""

from __future__ import annotations

import base64
import io
import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOWER_IS_BETTER = ("loss", "rmse", "mae", "regret", "latency", "seconds", "p_value", "gini", "needed", "false_positive")
MAX_METRIC_COLUMNS = 24

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
 body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2933; margin: 0; background: #f5f7fa; }
 header { background: #243b53; color: #fff; padding: 18px 32px; }
 header h1 { margin: 0 0 4px; font-size: 22px; }
 header p { margin: 0; color: #bcccdc; }
 main { padding: 16px 32px 48px; max-width: 1400px; }
 nav a { margin-right: 14px; color: #334e68; }
 section { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 16px 20px; margin: 18px 0; }
 h2 { margin-top: 0; font-size: 19px; color: #102a43; }
 h3 { font-size: 15px; color: #334e68; margin: 18px 0 8px; }
 .scroll { overflow-x: auto; }
 table { border-collapse: collapse; font-size: 13px; margin: 4px 0 10px; }
 th, td { padding: 5px 10px; border-bottom: 1px solid #e4e7eb; text-align: right; white-space: nowrap; }
 th { background: #f0f4f8; color: #334e68; font-weight: 600; position: sticky; top: 0; }
 td.text, th.text { text-align: left; }
 tr:hover td { background: #f7fafc; }
 td.best { font-weight: 700; color: #0b6e4f; }
 td.up { color: #0b6e4f; } td.down { color: #b42318; }
 .muted { color: #829ab1; font-size: 12px; }
 .plots { display: flex; flex-wrap: wrap; gap: 12px; }
 .plots img { max-width: 560px; width: 100%; border: 1px solid #e4e7eb; border-radius: 6px; }
</style></head>
<body>
<header><h1>{{ title }}</h1><p>{{ n_runs }} runs &middot; generated {{ generated }}</p></header>
<main>
{% if kinds %}<nav>{% for kind in kinds %}<a href="#kind-{{ kind.name }}">{{ kind.name }} ({{ kind.runs|length }})</a>{% endfor %}</nav>{% else %}
<section><p>No runs recorded{% if kind_filter %} of kind {{ kind_filter }}{% endif %}.</p></section>{% endif %}
{% for kind in kinds %}
<section id="kind-{{ kind.name }}">
 <h2>{{ kind.name }}</h2>
 <h3>Metrics</h3>
 <div class="scroll"><table>
  <tr><th class="text">#</th><th class="text">run</th><th class="text">when (UTC)</th><th class="text">code</th><th class="text">data</th>{% for m in kind.metrics %}<th>{{ m }}</th>{% endfor %}{% for t in kind.timings %}<th>{{ t }}</th>{% endfor %}</tr>
  {% for row in kind.rows %}<tr><td class="text">{{ loop.index }}</td><td class="text" title="{{ row.run_id }}">{{ row.name }}</td><td class="text">{{ row.when }}</td><td class="text">{{ row.code }}</td><td class="text">{{ row.data }}</td>
   {% for cell in row.metric_cells %}<td class="{{ cell.cls }}">{{ cell.text }}</td>{% endfor %}{% for cell in row.timing_cells %}<td>{{ cell }}</td>{% endfor %}</tr>
  {% endfor %}
 </table></div>
 {% if kind.rows|length > 1 %}
 <h3>Change against baseline <span class="muted">({{ kind.baseline }})</span></h3>
 <div class="scroll"><table>
  <tr><th class="text">run</th>{% for m in kind.metrics %}<th>&Delta; {{ m }}</th>{% endfor %}</tr>
  {% for row in kind.deltas %}<tr><td class="text">{{ row.name }}</td>{% for cell in row.cells %}<td class="{{ cell.cls }}">{{ cell.text }}</td>{% endfor %}</tr>{% endfor %}
 </table></div>
 {% endif %}
 {% for seg in kind.segments %}
 <h3>Segments of {{ seg.name }}</h3>
 <div class="scroll"><table>
  <tr><th class="text">segment</th>{% for m in seg.metrics %}<th>{{ m }}</th>{% endfor %}</tr>
  {% for row in seg.rows %}<tr><td class="text">{{ row.segment }}</td>{% for v in row.cells %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
 </table></div>
 {% endfor %}
 {% if kind.plots %}<h3>Plots</h3><div class="plots">{% for p in kind.plots %}<figure><img alt="{{ p.title }}" src="data:image/png;base64,{{ p.png }}"></figure>{% endfor %}</div>{% endif %}
</section>
{% endfor %}
</main></body></html>
"""


def _format(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(value)


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of this metric is the better one (losses, errors, costs, times)."""
    return metric.endswith(("_s", "_ms")) or any(marker in metric for marker in LOWER_IS_BETTER)


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _figure_png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots_for_kind(runs: list[dict[str, Any]], metrics: list[str]) -> list[dict[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: list[dict[str, str]] = []
    # Headline metrics: numeric (not flags) in every run; those that differ between runs first.
    numeric = [m for m in metrics
               if all(_numeric(r["metrics"].get(m)) is not None and not isinstance(r["metrics"].get(m), bool) for r in runs)]
    varying = [m for m in numeric if len({r["metrics"][m] for r in runs}) > 1]
    headline = (varying + [m for m in numeric if m not in varying])[:4]
    # Bars of the headline metrics per run (when there are several runs to compare).
    if len(runs) > 1 and headline:
        fig, axes = plt.subplots(1, len(headline), figsize=(3.2 * len(headline), 3.2), squeeze=False)
        labels = [f"#{i + 1} {r['name']}" for i, r in enumerate(runs)]
        for ax, metric in zip(axes[0], headline):
            ax.bar(range(len(runs)), [r["metrics"][metric] for r in runs], color="#486581")
            ax.set_xticks(range(len(runs)), labels, rotation=45, ha="right", fontsize=7)
            ax.set_title(metric, fontsize=10)
        fig.tight_layout()
        plots.append({"title": "headline metrics", "png": _figure_png(fig)})
    # Metric vs parameter: numeric config keys that vary across runs (>= 3 values).
    params: dict[str, set[float]] = defaultdict(set)
    for run in runs:
        for key, value in (run.get("config") or {}).items():
            if _numeric(value) is not None and not isinstance(value, bool):
                params[key].add(float(value))
    for param in sorted(p for p, values in params.items() if len(values) >= 3)[:4]:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        by_name: dict[str, list[tuple[float, float]]] = defaultdict(list)
        metric = headline[0] if headline else None
        if metric is None:
            plt.close(fig)
            continue
        for run in runs:
            x = _numeric((run.get("config") or {}).get(param))
            y = _numeric(run["metrics"].get(metric))
            if x is not None and y is not None:
                by_name[run["name"]].append((x, y))
        for name, points in sorted(by_name.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        ax.set_xlabel(param)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs {param}", fontsize=10)
        ax.grid(alpha=0.3)
        if len(by_name) > 1:
            ax.legend(fontsize=7)
        plots.append({"title": f"{metric} vs {param}", "png": _figure_png(fig)})
    # Curves carried by the runs themselves.
    for run in runs:
        for title, curve in ((run.get("extra") or {}).get("curves") or {}).items():
            try:
                x = curve["x"]
                series = curve["y"] if isinstance(curve["y"], dict) else {run["name"]: curve["y"]}
            except (KeyError, TypeError):
                continue
            fig, ax = plt.subplots(figsize=(5, 3.4))
            for label, ys in series.items():
                ax.plot(x[:len(ys)], ys, label=label)
            ax.set_xlabel(curve.get("xlabel", ""))
            ax.set_ylabel(curve.get("ylabel", ""))
            ax.set_title(f"{run['name']}: {title}", fontsize=10)
            ax.grid(alpha=0.3)
            if len(series) > 1:
                ax.legend(fontsize=7)
            plots.append({"title": title, "png": _figure_png(fig)})
    # Segment bars (first segmented run with a shared metric).
    for run in runs:
        segments = (run.get("extra") or {}).get("segments") or {}
        if not segments:
            continue
        seg_metrics = sorted({m for values in segments.values() for m in values if _numeric(values.get(m)) is not None})[:3]
        if not seg_metrics:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        names = list(segments)
        width = 0.8 / len(seg_metrics)
        for i, metric in enumerate(seg_metrics):
            ax.bar([j + i * width for j in range(len(names))], [_numeric(segments[n].get(metric)) or 0.0 for n in names], width, label=metric)
        ax.set_xticks([j + width * (len(seg_metrics) - 1) / 2 for j in range(len(names))], names, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{run['name']}: by segment", fontsize=10)
        ax.legend(fontsize=7)
        plots.append({"title": f"{run['name']} segments", "png": _figure_png(fig)})
    return plots


def _kind_context(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    metric_names: list[str] = []
    for run in runs:
        for key, value in (run.get("metrics") or {}).items():
            if key not in metric_names and (_numeric(value) is not None or isinstance(value, str)):
                metric_names.append(key)
    metric_names = metric_names[:MAX_METRIC_COLUMNS]
    timing_names = sorted({key for run in runs for key in (run.get("timings") or {})})[:6]
    best: dict[str, float] = {}
    for metric in metric_names:
        values = [_numeric(r["metrics"].get(metric)) for r in runs]
        values = [v for v in values if v is not None]
        if len(values) > 1 and len(set(values)) > 1:
            best[metric] = min(values) if lower_is_better(metric) else max(values)
    rows = []
    for run in runs:
        cells = []
        for metric in metric_names:
            value = run["metrics"].get(metric)
            cells.append({"text": _format(value), "cls": "best" if metric in best and _numeric(value) == best[metric] else ""})
        code = run.get("code") or {}
        rows.append({
            "run_id": run.get("run_id", ""), "name": run.get("name", ""),
            "when": (run.get("created_at") or "")[:19].replace("T", " "),
            "code": code.get("git_describe") or code.get("package", ""),
            "data": (run.get("data_fingerprint") or "")[:10],
            "metric_cells": cells,
            "timing_cells": [_format((run.get("timings") or {}).get(t)) for t in timing_names],
        })
    baseline = next((r for r in runs if (r.get("config") or {}).get("baseline") is True), runs[0])
    deltas = []
    for run in runs:
        if run is baseline:
            continue
        cells = []
        for metric in metric_names:
            a, b = _numeric(baseline["metrics"].get(metric)), _numeric(run["metrics"].get(metric))
            if a is None or b is None:
                cells.append({"text": "", "cls": ""})
                continue
            delta = b - a
            relative = f" ({delta / abs(a):+.1%})" if a else ""
            good = (delta < 0) if lower_is_better(metric) else (delta > 0)
            cells.append({"text": f"{delta:+.4g}{relative}", "cls": "" if delta == 0 else ("up" if good else "down")})
        deltas.append({"name": run["name"], "cells": cells})
    segments = []
    for run in runs:
        seg = (run.get("extra") or {}).get("segments") or {}
        if seg:
            seg_metrics = sorted({m for values in seg.values() for m in values})
            segments.append({"name": run["name"], "metrics": seg_metrics,
                             "rows": [{"segment": s, "cells": [_format(values.get(m)) for m in seg_metrics]} for s, values in seg.items()]})
    return {"name": kind, "runs": runs, "metrics": metric_names, "timings": timing_names, "rows": rows,
            "baseline": baseline["name"], "deltas": deltas, "segments": segments,
            "plots": _plots_for_kind(runs, metric_names)}


def render_report(runs: list[dict[str, Any]], title: str = "shoprec experiment report", kind_filter: list[str] | None = None) -> str:
    """The HTML text for these run records (grouped by kind, oldest first within a kind)."""
    from jinja2 import Environment

    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if kind_filter and run.get("kind") not in kind_filter:
            continue
        grouped[run.get("kind", "unknown")].append(run)
    kinds = [_kind_context(kind, grouped[kind]) for kind in sorted(grouped)]
    env = Environment(autoescape=True)
    return env.from_string(TEMPLATE).render(
        title=title, kinds=kinds, n_runs=sum(len(k["runs"]) for k in kinds), kind_filter=", ".join(kind_filter or []),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_report(store, out: str | Path, kinds: list[str] | None = None, title: str = "shoprec experiment report") -> Path:
    """Render every run in the store's registry (optionally only some kinds) to `out`."""
    from shoprec.evaluation.registry import list_runs

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(list_runs(store), title, kinds), encoding="utf-8")
    return out
