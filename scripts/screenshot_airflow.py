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
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from conveyor.airflow.rest import api_call
from conveyor.processes import free_port, stop_group

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAG_ID = "breast_cancer"
STEPS = ["ingest", "validate", "split", "train", "evaluate", "gate", "register", "export"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-extensions", "--no-first-run",
                  "--disable-sync", "--hide-scrollbars", "--window-size=1600,900",
                  "--force-device-scale-factor=1"]


def say(message: str) -> None:
    sys.stdout.write(f"screenshot: {message}\n")
    sys.stdout.flush()


class Group:
    """A process started in its own session, stopped through its process group only."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        self.process = subprocess.Popen(args, env=env, stdout=log.open("wb"),
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        stop_group(self.process)


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


class Page:
    """One Chromium tab over the DevTools protocol (JSON over a websocket)."""

    def __init__(self, socket_: Any) -> None:
        self.socket, self.next_id = socket_, 0

    async def send(self, method: str, **params: Any) -> Any:
        self.next_id += 1
        await self.socket.send(json.dumps({"id": self.next_id, "method": method,
                                           "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, what: str, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.5)
        raise SystemExit(f"the page never showed {what} ({expression})")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        say(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


# Node labels of the React Flow graph, and the task states the grid's cells carry.
GRAPH_NODES = ("JSON.stringify(Object.fromEntries([...document.querySelectorAll("
               "'.react-flow__node')].map(n => [n.innerText.split('\\n')[0], "
               "n.innerText.toLowerCase().includes('success')])))")
BODY_TEXT = "document.body.innerText"
CLICK = "document.querySelector('button[aria-label=\"%s\"]').click()"


async def shoot(base: str, run_id: str, out: Path, chromium: str, profile: Path) -> None:
    import websockets

    port = free_port()
    browser = Group("chromium", [chromium, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}",
                                 "--remote-debugging-address=127.0.0.1",
                                 f"--user-data-dir={profile}", "about:blank"],
                    dict(os.environ), profile.parent / "chromium.log")
    try:
        def targets() -> Any:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5) as a:
                return [t for t in json.loads(a.read()) if t["type"] == "page"]

        deadline = time.monotonic() + 30
        pages: list[Any] = []
        while not pages and time.monotonic() < deadline:
            try:
                pages = targets()
            except OSError:
                time.sleep(0.3)
        if not pages:
            raise SystemExit("chromium did not open its DevTools port:\n" + browser.tail())
        async with websockets.connect(pages[0]["webSocketDebuggerUrl"],
                                      max_size=64 * 2**20) as connection:
            page = Page(connection)
            await page.send("Page.enable")
            await page.send("Emulation.setDeviceMetricsOverride", width=1600, height=900,
                            deviceScaleFactor=1, mobile=False)
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
    finally:
        browser.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument("--url", help="an Airflow already running (with --run-id): only shoot")
    parser.add_argument("--run-id", help="a successful run of breast_cancer on --url")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
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
