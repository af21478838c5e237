"""Serving, side by side: ``mlflow models serve``, a bare ASGI floor, and ``conveyor serve``.

One run, one model, one body. A scratch home trains the breast-cancer pipeline with
``conveyor run`` and promotes v1 to ``production``; then, one server at a time, each on
127.0.0.1 with the same number of worker processes:

  (a) mlflow    ``mlflow models serve -m models:/breast_cancer_classifier@production
                --env-manager local --workers 2``
  (b) floor     ``uvicorn floor_app:app --workers 2`` (benchmarks/floor_app.py: orjson, a
                DataFrame, the same pipeline's ``predict_proba``; nothing else)
  (c) conveyor  ``conveyor serve models:/breast_cancer_classifier@production --workers 2``
                (validation, metrics and request sampling on, as deployed)

For each: seconds from spawn to the first 200 from its readiness URL; then, after a short
warm-up, wrk (``benchmarks/wrk_post.lua``, one thread, ``--concurrency`` connections) for
``--seconds`` with a one-row body (requests/s, p50, p99) and again with a 100-row body. The
three servers must return the same labels for the 100-row body, or the run says so.

  (d) alias move: v2 is trained, a fresh ``conveyor serve`` gets a steady ``--rate`` req/s
      open-loop load (benchmarks/loadgen.py) and, 5 s in, ``conveyor promote`` moves
      ``production`` to v2; every non-2xx answer and failed request is counted (target:
      zero), and ``GET /model`` is polled until every worker serves v2.

Every server is started in its own process group and stopped by its pid. The figures go to
``benchmarks/results/serve-<UTC time>.json`` (with the machine's load average at each
phase) and a Markdown table on stdout.

Usage::

    .venv/bin/python benchmarks/serve_bench.py [--seconds 15] [--concurrency 32]
        [--workers 2] [--only mlflow,floor,conveyor,alias] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.processes import free_port, stop_group

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
SPEC = ROOT / "examples" / "breast_cancer" / "pipeline.yaml"
MODEL = "breast_cancer_classifier"
URI = f"models:/{MODEL}@production"
READY_TIMEOUT = 180.0
PHASES = ("mlflow", "floor", "conveyor", "alias")


def log(message: str) -> None:
    sys.stderr.write(f"[{datetime.now(UTC):%H:%M:%S}] {message}\n")
    sys.stderr.flush()


def conveyor(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "conveyor"), *args], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"conveyor {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def request(url: str, body: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def bodies(home: Path, folder: Path, scratch: Path) -> dict[str, Path]:
    """One-row and 100-row ``dataframe_split`` bodies from the run's test split."""
    import pandas as pd

    columns = json.loads((folder / "serving_input_example.json").read_text())[
        "dataframe_split"]["columns"]
    test = pd.read_parquet(next(home.glob(f"artifacts/{SPEC.parent.name}/*/split/test.parquet")))
    rows = pd.concat([test] * 2, ignore_index=True)[columns]  # 114 test rows; 100 needed
    made = {}
    for name, count in (("one", 1), ("hundred", 100)):
        path = scratch / f"body-{name}.json"
        path.write_text(json.dumps({"dataframe_split": {
            "columns": columns, "data": rows.head(count).values.tolist()}}))
        made[name] = path
    return made


class Server:
    """One server process (its own group), its log, and the URLs it answers on."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int,
                 ready_path: str, scratch: Path) -> None:
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.base = f"http://127.0.0.1:{port}"
        self.ready_url = self.base + ready_path
        self.log = scratch / f"{name}-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> tuple[float, float]:
        """Spawn; seconds until the readiness URL first answers 200, and until it has answered
        200 eight times in a row (every worker process loads the model itself, and a new
        connection may reach one still loading: "ready" is all of them)."""
        started = time.perf_counter()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        first: float | None = None
        in_a_row = 0
        while time.perf_counter() - started < READY_TIMEOUT:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: "
                                   f"{self.log.read_text()[-600:]}")
            try:
                ok = request(self.ready_url, timeout=2)[0] == 200
            except OSError:
                ok = False
            now = time.perf_counter() - started
            in_a_row = in_a_row + 1 if ok else 0
            if ok and first is None:
                first = now
            if in_a_row == 1:
                run_started = now
            if in_a_row >= 8:
                assert first is not None
                return first, run_started
            time.sleep(0.01 if in_a_row else 0.05)
        raise RuntimeError(f"{self.name}: {self.ready_url} not 200 in {READY_TIMEOUT:.0f} s")

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, grace=30)
            log(f"{self.name}: stopped (pid {self.process.pid}, exit {self.process.returncode})")


def wrk(url: str, body: Path, seconds: float, connections: int) -> dict[str, Any]:
    env = {**os.environ, "BENCH_BODY": str(body)}
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout",
                           "10s", "-s", str(HERE / "wrk_post.lua"), url], env=env,
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    raw = json.loads(next(line for line in reversed(done.stdout.splitlines())
                          if line.startswith("{")))
    seconds_run = raw["duration_us"] / 1e6
    failed = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {"rps": round(raw["requests"] / seconds_run, 1), "requests": raw["requests"],
            "p50_ms": round(raw["p50_us"] / 1000, 2), "p99_ms": round(raw["p99_us"] / 1000, 2),
            "max_ms": round(raw["max_us"] / 1000, 2), "status_errors": raw["status_errors"],
            "socket_errors": failed, "loadavg_1m": round(os.getloadavg()[0], 2)}


def labels(answer: bytes) -> list[Any]:
    data = json.loads(answer)
    predictions = data["predictions"] if isinstance(data, dict) else data
    return [p.get("prediction", p) if isinstance(p, dict) else p for p in predictions]


def measure(server: Server, body: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"command": " ".join(server.argv), "loadavg_before":
                              round(os.getloadavg()[0], 2)}
    try:
        first, ready = server.start()
        result["first_200_s"], result["ready_s"] = round(first, 2), round(ready, 2)
        log(f"{server.name}: first 200 after {result['first_200_s']} s, every worker ready "
            f"after {result['ready_s']} s")
        url = f"{server.base}/invocations"
        status, answer = request(url, body["hundred"].read_bytes())
        if status != 200:
            raise RuntimeError(f"{server.name}: {status} {answer[:300]!r}")
        result["labels_100"] = labels(answer)
        wrk(url, body["one"], args.warmup, args.concurrency)  # warm-up, not recorded
        result["one_row"] = wrk(url, body["one"], args.seconds, args.concurrency)
        log(f"{server.name}: one row {result['one_row']}")
        result["hundred_rows"] = wrk(url, body["hundred"], args.seconds, args.concurrency)
        log(f"{server.name}: 100 rows {result['hundred_rows']}")
    except (RuntimeError, subprocess.SubprocessError, ValueError, OSError) as exc:
        result["error"] = str(exc)[:800]
        log(f"{server.name}: {result['error']}")
    finally:
        server.stop()
    return result


def served_version(server: Server) -> str | None:
    try:
        status, answer = request(f"{server.base}/model", timeout=2)
    except OSError:
        return None
    return str(json.loads(answer).get("version")) if status == 200 else None


def alias_move(server: Server, env: dict[str, str], body: Path,
               args: argparse.Namespace) -> dict[str, Any]:
    """A steady open-loop load while ``conveyor promote`` moves the alias to v2."""
    result: dict[str, Any] = {"command": " ".join(server.argv), "rate": args.rate,
                              "seconds": args.alias_seconds}
    try:
        result["ready_s"] = round(server.start()[1], 2)
        result["version_before"] = served_version(server)
        load = subprocess.Popen(
            [sys.executable, str(HERE / "loadgen.py"), "--url", f"{server.base}/invocations",
             "--body", str(body), "--rate", str(args.rate), "--seconds",
             str(args.alias_seconds)], stdout=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            time.sleep(5)
            started = time.perf_counter()
            conveyor(env, "promote", "--spec", str(SPEC))
            result["promote_s"] = round(time.perf_counter() - started, 2)
            # each worker polls the alias on its own: the move is done when /model names the
            # new version eight times in a row (new connections reach either worker)
            seen, in_a_row = None, 0
            while in_a_row < 8 and load.poll() is None:
                version = served_version(server)
                moved = version not in (None, result["version_before"])
                if moved and seen is None:
                    seen = time.perf_counter() - started
                in_a_row = in_a_row + 1 if moved else 0
                time.sleep(0.05 if in_a_row else 0.25)
            if seen is not None:
                result["first_worker_moved_after_promote_s"] = round(seen, 2)
            if in_a_row >= 8:
                result["all_moved_after_promote_s"] = round(time.perf_counter() - started, 2)
            result["version_after"] = served_version(server)
            out, _ = load.communicate(timeout=args.alias_seconds + 120)
        finally:
            if load.poll() is None:
                stop_group(load, grace=5)
        result["load"] = json.loads(out.strip().splitlines()[-1])
        log(f"alias: {result}")
    except (RuntimeError, subprocess.SubprocessError, ValueError, OSError) as exc:
        result["error"] = str(exc)[:800]
        log(f"alias: {result['error']}")
    finally:
        server.stop()
    return result


def table(results: dict[str, Any]) -> str:
    rows = ["| server | ready s (first 200) | 1-row req/s | p50 ms | p99 ms | 100-row req/s | "
            "100-row p99 ms |", "|---|---|---|---|---|---|---|"]
    for name in ("mlflow", "floor", "conveyor"):
        found = results.get(name)
        if not found:
            continue
        if "error" in found and "one_row" not in found:
            error = " ".join(found["error"].split())[:100].replace("|", "/")
            rows.append(f"| {name} | failed: {error} | | | | | |")
            continue
        one, hundred = found["one_row"], found["hundred_rows"]
        rows.append(f"| {name} | {found['ready_s']} ({found['first_200_s']}) | {one['rps']} | "
                    f"{one['p50_ms']} | {one['p99_ms']} | {hundred['rps']} | "
                    f"{hundred['p99_ms']} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="each wrk run (15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed wrk run first (3)")
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--workers", type=int, default=2, help="server workers (2)")
    parser.add_argument("--rate", type=float, default=200.0, help="alias move: req/s (200)")
    parser.add_argument("--alias-seconds", type=float, default=60.0,
                        help="alias move: length of the steady run; promote at 5 s (60)")
    parser.add_argument("--only", default=",".join(PHASES),
                        help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "WDBC_PATH", ROOT.parent / "shared" / "data" / "wdbc" / "wdbc.data")))
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if not shutil.which("wrk") and only - {"alias"}:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")

    scratch = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    home = scratch / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    # mlflow models serve runs `uvicorn` by name: the venv's bin first on PATH, as activated
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", CONVEYOR_HOME=str(home),
               MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
               MLFLOW_DISABLE_TELEMETRY="true")
    if args.data.is_file():
        env["WDBC_PATH"] = str(args.data)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=False).stdout.strip(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("keep", "data")},
        "loadgen": "wrk 1 thread (throughput), benchmarks/loadgen.py (alias move)",
    }
    try:
        log(f"training and promoting v1 in {home}")
        conveyor(env, "run", str(SPEC), "-q")
        conveyor(env, "promote", "--spec", str(SPEC))
        latest = json.loads((home / "exports" / SPEC.parent.name / "latest.json").read_text())
        folder = Path(latest["manifest"].removeprefix("file://")).parent / "model"
        body = bodies(home, folder, scratch)
        workers = str(args.workers)

        def server(name: str) -> Server:
            port = free_port()
            common = ["--host", "127.0.0.1", "--port", str(port), "--workers", workers]
            if name == "mlflow":
                argv = [str(BIN / "mlflow"), "models", "serve", "-m", URI, "--env-manager",
                        "local", *common]
                return Server(name, argv, env, port, "/ping", scratch)
            if name == "floor":
                argv = [str(BIN / "uvicorn"), "floor_app:app", "--app-dir", str(HERE),
                        "--no-access-log", "--log-level", "warning", *common]
                return Server(name, argv, {**env, "FLOOR_MODEL": str(folder)}, port,
                              "/ready", scratch)
            argv = [str(BIN / "conveyor"), "serve", URI, *common]
            return Server(name, argv, env, port, "/ready", scratch)

        for name in ("mlflow", "floor", "conveyor"):
            if name in only:
                results[name] = measure(server(name), body, args)
        answered = {n: results[n].get("labels_100") for n in ("mlflow", "floor", "conveyor")
                    if results.get(n, {}).get("labels_100")}
        results["same_labels_100"] = len({json.dumps(v) for v in answered.values()}) <= 1
        if "alias" in only:
            log("training v2 (C=0.1) for the alias move")
            conveyor(env, "run", str(SPEC), "-q", "model.params.C=0.1")
            results["alias"] = alias_move(server("conveyor"), env, body["one"], args)
    finally:
        out = HERE / "results" / f"serve-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        log(f"results: {out.relative_to(ROOT)}")
        if args.keep:
            log(f"scratch kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    sys.stdout.write(table(results) + "\n")
    if "alias" in results:
        sys.stdout.write(json.dumps(results["alias"]) + "\n")


if __name__ == "__main__":
    main()
