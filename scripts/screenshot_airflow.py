"""Screenshots of the Airflow UI after a successful run of the breast-cancer DAG.

    .venv/bin/python scripts/screenshot_airflow.py [--out docs/screenshots] [--keep]

What it does, all on 127.0.0.1:

1. starts ``conveyor airflow standalone`` (the real command a user runs: api-server,
   scheduler, dag-processor, triggerer; SQLite) in a throw-away ``CONVEYOR_HOME`` with
   ``CONVEYOR_PIPELINES=examples/breast_cancer``;
2. waits for the DAG, unpauses it and triggers one run through the REST API, waits until
   the run succeeds;
3. drives headless Chromium (Debian's ``chromium``) over the DevTools protocol: opens the
   run's page in the graph view and in the grid view, checks in the page itself that the
   graph shows the eight steps and that every task is green, then saves PNGs;
4. stops Chromium and Airflow by their process groups, and removes the temporary home
   (``--keep`` keeps it, for a look at the logs).

Exit 0 with the PNG paths, 1 with the reason when any check fails. Needs ``chromium``
(``apt-get install chromium``) and the ``airflow`` extra (``make setup``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from screenshot import Group, browser, find_chromium, say  # scripts/screenshot.py

from conveyor.airflow.rest import api_call
from conveyor.processes import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAG_ID = "breast_cancer"
STEPS = ["ingest", "validate", "split", "train", "evaluate", "gate", "register", "export"]



class Api:
    """Airflow's REST API with a token from the simple auth manager (all users admin)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get_json(self, path: str, timeout: float = 10) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as answer:
            return json.loads(answer.read())

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        return api_call(self.url, method, path, body)


def wait_until(what: str, check: Any, timeout: float, airflow: Group) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not airflow.alive():
            raise SystemExit(f"airflow standalone exited while waiting for {what}:\n"
                             + airflow.tail())
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}:\n" + airflow.tail())


def run_dag(api: Api, airflow: Group) -> str:
    """Unpause the DAG, trigger one run, wait for it; its run id."""
    def parsed() -> bool:
        try:
            return bool(api.call("GET", f"/api/v2/dags/{DAG_ID}")["dag_id"])
        except urllib.error.HTTPError:
            return False

    wait_until("the scheduler", lambda: api.get_json("/api/v2/monitor/health")
               .get("scheduler", {}).get("status") == "healthy", 240, airflow)
    wait_until(f"DAG {DAG_ID} to be parsed", parsed, 180, airflow)
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                   {"logical_date": None, "note": "screenshot run"})
    run_id = run["dag_run_id"]
    say(f"triggered {DAG_ID} run {run_id}; waiting for it")

    def finished() -> str | None:
        state = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        return state if state in ("success", "failed") else None

    state = wait_until(f"run {run_id}", finished, 600, airflow)
    if state != "success":
        raise SystemExit(f"the DAG run ended {state}; see {airflow.log}")
    return str(run_id)


# Node labels of the React Flow graph, and the task states the grid's cells carry.
GRAPH_NODES = ("JSON.stringify(Object.fromEntries([...document.querySelectorAll("
               "'.react-flow__node')].map(n => [n.innerText.split('\\n')[0], "
               "n.innerText.toLowerCase().includes('success')])))")
BODY_TEXT = "document.body.innerText"
CLICK = "document.querySelector('button[aria-label=\"%s\"]').click()"


async def shoot(base: str, run_id: str, out: Path, chromium: str, profile: Path) -> None:
    async with browser(chromium, profile) as page:
        await page.size(1600, 900)
        run_url = f"{base}/dags/{DAG_ID}/runs/{run_id}"

        # The UI keeps the grid/graph choice in localStorage (``default_dag_view``).
        await page.send("Page.navigate", url=f"{base}/")
        await page.wait_for("the UI", "document.readyState === 'complete'")
        await page.evaluate("localStorage.setItem('default_dag_view', '\"graph\"')")
        await page.send("Page.navigate", url=run_url)
        nodes = json.loads(await page.wait_for(
            "the eight steps in the graph",
            f"(() => {{ const n = {GRAPH_NODES}; const s = Object.values(JSON.parse(n)); "
            f"return s.length >= {len(STEPS)} && s.every(Boolean) ? n : null }})()", 90))
        if sorted(nodes) != sorted(STEPS):
            raise SystemExit(f"the graph view shows {sorted(nodes)}, not the steps {STEPS}")
        # The graph alone, as wide as the window: fold the details panel, fit the view.
        await page.send("Emulation.setDeviceMetricsOverride", width=1500, height=560,
                        deviceScaleFactor=1, mobile=False)
        await page.evaluate(CLICK % "Collapse Details Panel")
        await asyncio.sleep(1)
        await page.evaluate(CLICK % "Fit View")
        await asyncio.sleep(2)  # the view animates into place
        await page.screenshot(out / "airflow-graph.png")

        await page.send("Emulation.setDeviceMetricsOverride", width=1600, height=900,
                        deviceScaleFactor=1, mobile=False)
        await page.evaluate("localStorage.setItem('default_dag_view', '\"grid\"')")
        await page.send("Page.navigate", url=run_url)
        await page.wait_for("the grid", f"{BODY_TEXT}.includes('export')", 60)
        await asyncio.sleep(2)
        await page.screenshot(out / "airflow-grid.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument("--url", help="an Airflow already running (with --run-id): only shoot")
    parser.add_argument("--run-id", help="a successful run of breast_cancer on --url")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        say("needs Debian's chromium: apt-get install -y chromium")
        return 1
    wdbc = Path(os.environ.get("WDBC_PATH") or REPO.parent / "shared/data/wdbc/wdbc.data")
    if not wdbc.is_file():
        say(f"needs the WDBC file (WDBC_PATH); not found at {wdbc}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    if args.url:
        with tempfile.TemporaryDirectory(prefix="conveyor-screenshot-") as tmp:
            asyncio.run(shoot(args.url.rstrip("/"), args.run_id, args.out, chromium,
                              Path(tmp) / "chromium-profile"))
        return 0
    root = Path(tempfile.mkdtemp(prefix="conveyor-screenshot-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "CONVEYOR_", "MLFLOW_"))}
    env.update({"CONVEYOR_HOME": str(root / "home"),
                "CONVEYOR_PIPELINES": str(REPO / "examples" / DAG_ID),
                "WDBC_PATH": str(wdbc), "CONVEYOR_EXPORT_URI": (root / "exports").as_uri()})
    say(f"conveyor airflow standalone on 127.0.0.1:{port} (home {root})")
    airflow = Group("airflow", [str(BIN / "conveyor"), "airflow", "standalone",
                                "--port", str(port)], env, root / "standalone.log")
    started = time.perf_counter()
    try:
        run_id = run_dag(Api(f"http://127.0.0.1:{port}"), airflow)
        say(f"run succeeded {time.perf_counter() - started:.0f}s after start; opening the UI")
        asyncio.run(shoot(f"http://127.0.0.1:{port}", run_id, args.out, chromium,
                          root / "chromium-profile"))
    finally:
        airflow.stop()
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
