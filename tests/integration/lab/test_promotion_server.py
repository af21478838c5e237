"""The registry lock and racing promotions against an MLflow *tracking server* on PostgreSQL.

``test_promotion.py`` proves compare-and-set on the embedded SQLite store; a team runs an
``mlflow server`` with a PostgreSQL backend, where the lock's atomicity rests on the server
turning PostgreSQL's unique constraint into ``RESOURCE_ALREADY_EXISTS`` for every caller but
one. Real parts only: ``mlflow server`` (two workers, so requests really run in parallel) on
127.0.0.1, its own database on the machine's PostgreSQL (dropped afterwards), artifacts
served by the server from a temporary folder.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# A spawned child imports this module again: its own folder first, so that ``conftest`` is
# the lab's (under pytest-xdist another test folder's conftest can come first on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import drop, make_lab
from conveyor.errors import TrackingError
from conveyor.lab import promote_lab, train_file
from conveyor.processes import free_port, stop_group
from conveyor.promotion import PREVIOUS, PRODUCTION, RegistryLock

pytestmark = pytest.mark.slow
KNN = "name: knn\nmodel: knn\nparams: {n_neighbors: 5}\n"  # macro F1 0.9095 on the hold-out
TREE = "name: tree\nmodel: decision_tree\nparams: {max_depth: 3, random_state: 0}\n"  # 0.9333


@pytest.fixture(scope="module")
def tracking_server(postgres_database: Callable[[str], str],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    log = root / "server.log"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
         "--port", str(port), "--backend-store-uri", postgres_database("mlflow"),
         "--artifacts-destination", (root / "artifacts").as_uri(), "--serve-artifacts",
         "--workers", "2"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start:\n" + log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        stop_group(server)


@pytest.fixture()
def on_server(tracking_server: str, monkeypatch: pytest.MonkeyPatch,
              request: pytest.FixtureRequest) -> str:
    """Point Conveyor (and spawned children) at the server; a model name of the test's own."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    monkeypatch.chdir(request.getfixturevalue("tmp_path"))  # nothing lands in the repo
    return f"iris_{request.node.name[5:40]}_{os.getpid()}_{time.monotonic_ns() % 10**6}"


def test_exactly_one_of_eight_racing_clients_takes_the_lock(on_server: str) -> None:
    from mlflow import MlflowClient

    model = on_server
    start, done = threading.Barrier(8), threading.Barrier(8)
    results: dict[int, str] = {}

    def contend(index: int) -> None:
        client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
                          registry_uri=os.environ["MLFLOW_TRACKING_URI"])
        lock = RegistryLock(client, model, owner=f"client-{index}", wait=0)
        start.wait(timeout=60)
        try:
            lock.acquire()
            results[index] = "won"
        except TrackingError as exc:
            results[index] = str(exc)
        done.wait(timeout=60)  # the winner holds the lock until every loser has tried
        lock.release()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    winners = [i for i, outcome in results.items() if outcome == "won"]
    assert len(results) == 8 and len(winners) == 1, results
    for index, outcome in results.items():
        if index != winners[0]:
            assert f"held by client-{winners[0]}" in outcome, outcome
    client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
                          registry_uri=os.environ["MLFLOW_TRACKING_URI"])
    assert not [m for m in client.search_registered_models(f"name = '{model}.lock'")]


def _promote_in_child(inbox: str, model: str, start: multiprocessing.Barrier,
                      out: multiprocessing.Queue) -> None:
    from conftest import make_lab
    from conveyor.lab import promote_lab

    lab = make_lab(Path(inbox), model_name=model)
    start.wait(timeout=120)
    decision = promote_lab(lab, owner=f"child-{os.getpid()}")
    out.put((decision.action, decision.chosen, decision.previous_production))


def test_racing_promotions_through_the_server_have_one_winner(on_server: str,
                                                              tmp_path: Path) -> None:
    from mlflow import MlflowClient

    model = on_server
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox, "placeholder.yaml", KNN)  # the lab watches a real folder
    lab = make_lab(inbox, model_name=model)
    assert train_file(lab, KNN.encode(), "knn.yaml").versions == ["1"]
    assert promote_lab(lab).action == "promoted"  # production v1
    assert train_file(lab, TREE.encode(), "tree.yaml").versions == ["2"]  # the better one

    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_promote_in_child, args=(str(inbox), model, start, out))
                for _ in range(2)]
    for child in children:
        child.start()
    results = [out.get(timeout=240) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0

    actions = sorted(action for action, _, _ in results)
    assert actions.count("promoted") == 1, results
    assert set(actions) <= {"promoted", "aborted", "kept"}, results
    assert next(r for r in results if r[0] == "promoted")[1:] == ("2", "1")
    client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
                          registry_uri=os.environ["MLFLOW_TRACKING_URI"])
    aliases = {k: str(v) for k, v in client.get_registered_model(model).aliases.items()}
    assert aliases == {PRODUCTION: "2", PREVIOUS: "1"}
