"""Past runs, read from the Store: a run is complete only if it has a manifest."""

from __future__ import annotations

from typing import Any

from conveyor.errors import StoreError
from conveyor.store import Store

__all__ = ["latest_run_id", "list_runs"]


def list_runs(store: Store, pipelines: list[str] | None = None, *, limit: int = 20
              ) -> list[dict[str, Any]]:
    """Newest first: pipeline, run id, status (ok, rejected, incomplete), test metrics, URI."""
    names = pipelines if pipelines is not None else [
        n for n in store.list(store.root) if not n.startswith((".", "_"))]
    out = []
    for pipeline in names:
        run_ids = sorted((n for n in store.list(store.uri(pipeline)) if not n.startswith("_")),
                         reverse=True)
        for run_id in run_ids[:limit]:
            uri = store.uri(pipeline, run_id)
            try:
                manifest = store.get_json(f"{uri}/manifest.json")
            except StoreError:
                manifest = None
            out.append({
                "pipeline": pipeline, "run_id": run_id, "uri": uri,
                "status": manifest["status"] if manifest else "incomplete",
                "metrics": manifest.get("metrics", {}) if manifest else {},
            })
    out.sort(key=lambda r: r["run_id"], reverse=True)
    return out[:limit]


def latest_run_id(store: Store, pipeline: str) -> str | None:
    """The newest run id of ``pipeline`` (complete or not)."""
    runs = sorted((n for n in store.list(store.uri(pipeline)) if not n.startswith("_")),
                  reverse=True)
    return runs[0] if runs else None
