"""The run's HTML report: the one page a person opens to judge a model.

All HTML of an evaluation is written here; steps gather the facts and call
:func:`render_report`. The page is self-contained (styles inline, images as ``data:`` URIs,
no script, no external URL), so it can be mailed, attached to an MLflow run or opened from an
export folder offline. Every value from a spec, a data set or a search is escaped.

Sections, each with an ``id``: the header with the verdict, ``metrics`` (test, train,
cross-validation mean ± std), ``gate`` (checks and the champion comparison), ``threshold``,
``plots``, ``search``, ``data`` and ``spec``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

from conveyor.report_page import escape, page

__all__ = ["metric_rows", "render_report", "spec_as_yaml"]


_SPLITS = ("test", "train", "cv")
def _e(value: Any) -> str:
    return escape(value)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    if isinstance(value, float) and not math.isfinite(value):
        return _e(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _img(png: bytes, alt: str) -> str:
    return (f'<img alt="{_e(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def metric_rows(metrics: Mapping[str, float]) -> list[dict[str, Any]]:
    """One row per metric name: ``test``, ``train``, ``cv`` (mean) and ``cv_std``.

    >>> metric_rows({"test_f1": 0.9, "cv_f1": 0.88, "cv_f1_std": 0.02})
    [{'metric': 'f1', 'test': 0.9, 'train': None, 'cv': 0.88, 'cv_std': 0.02}]
    """
    names: list[str] = []
    for key in metrics:
        split, _, name = key.partition("_")
        if (split in _SPLITS and name and not (split == "cv" and name.endswith("_std"))
                and name not in names):
            names.append(name)
    return [{"metric": n, "test": metrics.get(f"test_{n}"), "train": metrics.get(f"train_{n}"),
             "cv": metrics.get(f"cv_{n}"), "cv_std": metrics.get(f"cv_{n}_std")}
            for n in names]


def _metrics_section(metrics: Mapping[str, float], rules: Mapping[str, str]) -> str:
    rows = metric_rows(metrics)
    has_cv = any(r["cv"] is not None for r in rows)
    head = ("<tr><th>metric</th><th class=n>test</th><th class=n>train</th>"
            + ("<th class=n>CV mean ± std (train)</th>" if has_cv else "")
            + "<th>gate</th></tr>")
    body = []
    for r in rows:
        cv = ""
        if has_cv:
            cv = (f"<td class=n>{_num(r['cv'])} ± {_num(r['cv_std'])}</td>"
                  if r["cv"] is not None else "<td class=n>—</td>")
        body.append(f"<tr><td>{_e(r['metric'])}</td><td class=n>{_num(r['test'])}</td>"
                    f"<td class=n>{_num(r['train'])}</td>{cv}"
                    f"<td class=muted>{_e(rules.get('test_' + r['metric'], ''))}</td></tr>")
    return (f'<section id="metrics"><h2>Metrics</h2><table>{head}{"".join(body)}</table>'
            "</section>")


def _gate_section(verdict: Mapping[str, Any] | None) -> str:
    if verdict is None:
        return ('<section id="gate"><h2>Gate</h2><p class=muted>No gate step ran.</p>'
                "</section>")
    checks = verdict.get("checks") or []
    rows = "".join(
        f"<tr><td>{_e(c.get('metric'))}</td><td>{_e(c.get('rule'))}</td>"
        f"<td class=n>{_num(c.get('value'))}</td>"
        f"<td class={'ok' if c.get('passed') else 'bad'}>"
        f"{'pass' if c.get('passed') else 'FAIL'}</td></tr>" for c in checks)
    parts = ['<section id="gate"><h2>Gate</h2>']
    parts.append("<table><tr><th>metric</th><th>rule</th><th class=n>value</th><th></th></tr>"
                 f"{rows}</table>" if checks else
                 "<p class=muted>No bounds in the spec's <code>gate:</code>.</p>")
    champion = verdict.get("champion")
    if champion:
        parts.append(f"<h2 style='margin-top:1.2rem'>Against the champion: "
                     f"{_e(champion.get('name'))} version {_e(champion.get('version'))} "
                     f"(@{_e(champion.get('alias', 'production'))})</h2>")
        comparison = verdict.get("comparison") or []
        if comparison:
            parts.append(
                "<table><tr><th>metric</th><th class=n>candidate</th><th class=n>champion</th>"
                "<th class=n>delta</th><th class=n>min delta</th><th></th></tr>" + "".join(
                    f"<tr><td>{_e(c.get('metric'))}"
                    f"{' <span class=muted>(lower is better)</span>' if c.get('lower_is_better') else ''}"  # noqa: E501
                    f"</td><td class=n>{_num(c.get('candidate'))}</td>"
                    f"<td class=n>{_num(c.get('champion'))}</td>"
                    f"<td class=n>{_num(c.get('delta'))}</td>"
                    f"<td class=n>{_num(c.get('min_delta'))}</td>"
                    f"<td class={'ok' if c.get('passed') else 'bad'}>"
                    f"{'beats it' if c.get('passed') else 'does not beat it'}</td></tr>"
                    for c in comparison) + "</table>")
        scores = champion.get("metrics") or {}
        if scores:
            parts.append("<details><summary>the champion's scores on this run's test rows"
                         "</summary><table>"
                         + "".join(f"<tr><td>{_e(k)}</td><td class=n>{_num(v)}</td></tr>"
                                   for k, v in sorted(scores.items())) + "</table></details>")
    elif "champion" in verdict:
        parts.append("<p class=muted>No champion in production yet: nothing to compare "
                     "with.</p>")
    parts.append("</section>")
    return "".join(parts)


def _threshold_section(threshold: Mapping[str, Any] | None, images: Mapping[str, bytes]) -> str:
    if not threshold:
        return ""
    rows = [("threshold", _num(threshold.get("threshold"), 2)),
            ("positive class", _e(threshold.get("positive", "")))]
    if threshold.get("tuned"):
        metric = _e(threshold.get("metric"))
        rows += [("chosen for", f"{metric} on {_e(threshold.get('cv'))} out-of-fold splits of "
                                "the training rows"),
                 (f"{metric} at the threshold", _num(threshold.get("score"))),
                 (f"{metric} at 0.5", _num(threshold.get("default_score")))]
    else:
        rows.append(("chosen", "fixed in the spec (model.threshold)"))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    curve = next((png for title, png in images.items() if title.startswith("threshold")), None)
    figure = (f"<figure>{_img(curve, 'threshold curve')}<figcaption>the tuned metric by "
              "threshold</figcaption></figure>") if curve else ""
    return (f'<section id="threshold"><h2>Decision threshold</h2><div class=two>'
            f"<table>{table}</table>{figure}</div></section>")


def _plots_section(images: Mapping[str, bytes]) -> str:
    figures = "".join(
        f"<figure>{_img(png, title)}<figcaption>{_e(title)}</figcaption></figure>"
        for title, png in images.items() if not title.startswith("threshold"))
    return f'<section id="plots"><h2>Plots</h2><div class=grid>{figures}</div></section>'


def _search_section(search: Mapping[str, Any] | None, history: bytes | None) -> str:
    if not search:
        return ""
    best = search.get("best") or {}
    facts = [("method", search.get("method")), ("metric", search.get("metric")),
             ("direction", search.get("direction")), ("folds", search.get("cv")),
             ("trials", search.get("n_trials")), ("stopped by", search.get("stopped_by")),
             ("best candidate", best.get("candidate")),
             ("best CV score", f"{_num(best.get('cv_mean'))} ± {_num(best.get('cv_std'))}")]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v) if k != 'best CV score' else v}</td></tr>"
                    for k, v in facts if v is not None)
    params = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>"
                     for k, v in (best.get("params") or {}).items())
    parts = [f'<section id="search"><h2>Hyper-parameter search</h2><div class=two><div>'
             f"<table>{table}</table>"]
    if params:
        parts.append(f"<h2 style='margin-top:1rem'>Best parameters</h2><table>{params}</table>")
    parts.append("</div>")
    if history:
        parts.append(f"<figure>{_img(history, 'search history')}<figcaption>score by trial"
                     "</figcaption></figure>")
    parts.append("</div>")
    candidates = search.get("candidates") or []
    if candidates:
        parts.append("<h2 style='margin-top:1rem'>Candidates</h2><table><tr><th>name</th>"
                     "<th>estimator</th><th class=n>CV mean ± std</th><th class=n>trials</th>"
                     "<th>best parameters</th></tr>" + "".join(
                         f"<tr><td>{_e(c.get('name'))}</td><td>{_e(c.get('estimator'))}</td>"
                         f"<td class=n>{_num(c.get('cv_mean'))} ± {_num(c.get('cv_std'))}</td>"
                         f"<td class=n>{_e(c.get('trials', ''))}</td>"
                         f"<td class=muted>{_e(c.get('best_params', ''))}</td></tr>"
                         for c in candidates) + "</table>")
    trials = search.get("trials") or []
    if trials:
        reverse = search.get("direction", "maximize") != "minimize"
        done = [t for t in trials if t.get("cv_mean") is not None]
        top = sorted(done, key=lambda t: t["cv_mean"], reverse=reverse)[:10]
        parts.append(f"<details><summary>the best {len(top)} of {len(trials)} trials</summary>"
                     "<table><tr><th class=n>#</th><th>candidate</th><th>parameters</th>"
                     "<th class=n>CV mean ± std</th><th>state</th><th class=n>seconds</th></tr>"
                     + "".join(
                         f"<tr><td class=n>{_e(t.get('number'))}</td>"
                         f"<td>{_e(t.get('candidate', ''))}</td>"
                         f"<td class=muted>{_e(t.get('params', ''))}</td>"
                         f"<td class=n>{_num(t.get('cv_mean'))} ± {_num(t.get('cv_std'))}</td>"
                         f"<td>{_e(t.get('state', ''))}</td>"
                         f"<td class=n>{_num(t.get('seconds'), 2)}</td></tr>" for t in top)
                     + "</table></details>")
    parts.append("</section>")
    return "".join(parts)


def spec_as_yaml(dumped: Mapping[str, Any]) -> str:
    """The spec as run, in YAML, in the spec's order; a string of several lines (the
    ``description: |`` of the examples) as a literal block, as it was written."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value.rstrip("\n") or value.endswith("\n") else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _text)
    return yaml.dump(dict(dumped), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def _target_range(data: Mapping[str, Any], target: str | None) -> str:
    column = ((data.get("schema") or {}).get("columns") or {}).get(target or "") or {}
    if "min" not in column or "max" not in column:
        return "—"
    return f"{target}: {column['min']:g} to {column['max']:g}"


def _data_section(data: Mapping[str, Any] | None, target: str | None = None) -> str:
    if not data:
        return ""
    features = data.get("features") or {}
    missing = data.get("missing") or {}
    kinds: dict[str, int] = {}
    for kind in features.values():
        kinds[str(kind)] = kinds.get(str(kind), 0) + 1
    facts = [("rows", data.get("rows")), ("columns", data.get("columns")),
             ("features", ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "—"),
             ("target", _target_range(data, target)) if data.get("task") == "regression" else
             ("classes", ", ".join(f"{k}: {v}" for k, v in (data.get("classes") or {}).items())
              or "—"),
             ("columns with missing values", len(missing))]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    rows = data.get("rows") or 0
    columns = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(kind)}</td>"
        f"<td class=n>{missing.get(name, 0)}</td>"
        f"<td class=n>{(missing.get(name, 0) / rows if rows else 0):.1%}</td></tr>"
        for name, kind in features.items())
    warnings = "".join(f"<li>{_e(w)}</li>" for w in data.get("warnings") or [])
    return (f'<section id="data"><h2>Data</h2><table>{table}</table>'
            + (f"<h2 style='margin-top:1rem'>Warnings from validate</h2><ul>{warnings}</ul>"
               if warnings else "")
            + "<details><summary>every feature: type and missing values</summary><table>"
            "<tr><th>column</th><th>type</th><th class=n>missing</th><th class=n>share</th></tr>"
            f"{columns}</table></details></section>")


def render_report(
    *, pipeline: str, run_id: str, metrics: Mapping[str, float],
    images: Mapping[str, bytes] | None = None, verdict: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None,
    spec_yaml: str | None = None, search: Mapping[str, Any] | None = None,
    search_history: bytes | None = None, threshold: Mapping[str, Any] | None = None,
    created: str | None = None, target: str | None = None,
) -> str:
    """The run's report as one self-contained HTML page.

    Args:
        pipeline: the spec's name.
        run_id: the Conveyor run id.
        metrics: ``test_*``, ``train_*``, ``cv_*`` and ``cv_*_std`` values.
        images: PNG bytes by title (``"ROC curve (test)"``), shown in a grid.
        verdict: the gate's verdict (``passed``, ``checks``, ``reason``; ``champion`` and
            ``comparison`` when the gate compared with production), or ``None``.
        facts: a few headline facts (model, rows), shown as cards.
        data: the validate step's report (rows, columns, features, classes, missing).
        spec_yaml: the spec as run, in YAML.
        search: the train step's search record (method, best, candidates, trials).
        search_history: the search's PNG (score by trial).
        threshold: the decision threshold saved with the model (value, how it was chosen,
            the metric at it and at 0.5).
        created: when the report was rendered (ISO 8601).
        target: the target column (a regression's data summary shows its range).
    """
    images = dict(images or {})
    if verdict is None:
        state, label = "none", "NO GATE"
    elif verdict.get("passed"):
        state, label = "passed", "PASSED"
    else:
        state, label = "rejected", "REJECTED"
    reason = (f'<p class=reason>{_e(verdict.get("reason"))}</p>'
              if verdict is not None and not verdict.get("passed") and verdict.get("reason")
              else "")
    rules = {c["metric"]: c.get("rule", "") for c in (verdict or {}).get("checks", [])
             if "metric" in c}
    cards = "".join(f'<div class=card><div class=k>{_e(k)}</div><div class=v>{_e(v)}</div>'
                    "</div>" for k, v in (facts or {}).items())
    headline = [(k, metrics[k]) for k in ("test_accuracy", "test_f1", "test_roc_auc",
                                           "test_pr_auc", "test_rmse", "test_r2")
                if k in metrics][:4]
    cards += "".join(f'<div class=card><div class=k>{_e(k)}</div><div class=v>{_num(v, 3)}'
                     "</div></div>" for k, v in headline)
    sections = [
        _metrics_section(metrics, rules),
        _gate_section(verdict),
        _threshold_section(threshold, images),
        _plots_section(images) if images else "",
        _search_section(search, search_history),
        _data_section(data, target),
        (f'<section id="spec"><h2>Spec</h2><details open><summary>the spec as run</summary>'
         f"<pre>{_e(spec_yaml)}</pre></details></section>" if spec_yaml else ""),
    ]
    links = [("metrics", "Metrics"), ("gate", "Gate"), ("threshold", "Threshold"),
             ("plots", "Plots"), ("search", "Search"), ("data", "Data"), ("spec", "Spec")]
    when = f" · {_e(created)}" if created else ""
    return page(title=f"{pipeline} · run {run_id} · {label}", heading=pipeline,
                badge=(state, label), sub=f"run {_e(run_id)}{when}", note=reason,
                links=links, cards=cards, body="".join(sections))
