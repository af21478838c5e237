"""The one-line facts a finished step shows in ``conveyor run`` and ``conveyor show``."""

from __future__ import annotations

from typing import Any

__all__ = ["_facts"]


def _facts(step: str, record: Any) -> str:
    info = record.info
    if step == "ingest":
        return f"{info.get('rows')} rows × {info.get('columns')} columns"
    if step == "validate":
        warn = info.get("warnings", 0)
        return f"{info.get('features')} features" + (f", {warn} warnings" if warn else "")
    if step == "split":
        return f"train {info.get('train_rows')} / test {info.get('test_rows')}"
    if step == "train":
        return str(info.get("estimator", ""))
    if step == "evaluate":
        shown = [f"{k}={v:.3f}" for k, v in sorted(record.metrics.items())
                 if k in ("test_accuracy", "test_f1")]
        return " ".join(shown)
    if step == "gate":
        return "passed" if info.get("passed") else f"rejected: {info.get('reason', '')}"
    if step == "register":
        return f"{info.get('name')} v{info.get('version')}"
    if step == "export":
        return str(info.get("uri", ""))
    return ""
