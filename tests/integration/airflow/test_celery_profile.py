"""The production profile: CeleryExecutor, two workers, PostgreSQL, Redis, S3, MLflow server.

Everything real and on 127.0.0.1: Airflow 3.3 (api-server, scheduler, dag-processor, two
Celery workers) with its metadata on PostgreSQL and Redis as the broker, an MLflow tracking
server on PostgreSQL with artifacts on S3, and the Conveyor Store on S3 (moto's server). The
breast-cancer DAG must succeed with tasks on both workers (told apart by the task
instances' hostnames) and with artifacts moving between them only through S3: the workers'
own CONVEYOR_HOME folders hold no artifact.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow_harness import BIN, REPO, Service, make_home, wait_http

from conveyor.airflow.run_ids import conveyor_run_id
from conveyor.processes import free_port

pytestmark = [pytest.mark.celery, pytest.mark.slow, pytest.mark.timeout(1500)]

PIPELINES = REPO / "examples" / "breast_cancer"
DAG_ID = "breast_cancer"
RUN_ID = "celery-profile"
STEPS = ["ingest", "validate", "split", "train", "evaluate", "gate", "register", "export"]
REDIS_DB = 11


def unavailable(reason: str) -> None:
    """Skip, or fail when CI requires every service (same rule as tests/conftest.py)."""
    if os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def databases(postgres_database: Callable[[str], str]) -> dict[str, str]:
    """SQLAlchemy URLs of this module's own Airflow and MLflow databases."""
    return {"airflow": postgres_database("af"), "mlflow": postgres_database("mlflow")}


@pytest.fixture(scope="module")
def redis_db() -> Iterator[str]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=5)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        unavailable(f"Redis on 127.0.0.1:6379 is not reachable: {exc}")
    yield f"redis://127.0.0.1:6379/{REDIS_DB}"
    client.flushdb()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, databases: dict[str, str],
            redis_db: str, s3_server: str, wdbc_path: Path) -> Iterator[dict[str, Any]]:
    import boto3

    root = tmp_path_factory.mktemp("celery")
    bucket = f"conveyor-{uuid.uuid4().hex[:10]}"
    aws = {"AWS_ACCESS_KEY_ID": "conveyor-test-key",
           "AWS_SECRET_ACCESS_KEY": "conveyor-test-secret-do-not-log",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server,
           "AWS_ENDPOINT_URL_S3": s3_server, "MLFLOW_S3_ENDPOINT_URL": s3_server}
    boto3.client("s3", endpoint_url=s3_server, aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
                 region_name="us-east-1").create_bucket(Bucket=bucket)
    services: list[Service] = []
    try:
        mlflow_port = free_port()
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AIRFLOW", "CONVEYOR_", "MLFLOW_", "AWS_"))}
        mlflow = Service("mlflow", [
            str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
            "--backend-store-uri", databases["mlflow"],
            "--artifacts-destination", f"s3://{bucket}/mlflow", "--serve-artifacts",
            "--workers", "1"], {**base_env, **aws}, root / "mlflow.log").start()
        services.append(mlflow)
        tracking = f"http://127.0.0.1:{mlflow_port}"
        wait_http(f"{tracking}/health", 120, service=mlflow)

        connection = {"conn_type": "conveyor", "extra": {
            "store_root": f"s3://{bucket}/store", "tracking_uri": tracking}}
        home = make_home(root / "airflow", pipelines=PIPELINES, extra_env={
            **aws,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": databases["airflow"],
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": redis_db,
            "AIRFLOW__CELERY__RESULT_BACKEND":
                "db+" + databases["airflow"].replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow_harness.worker_hostname",
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                           os.environ.get("PYTHONPATH", "")]),
            "CONVEYOR_CONN_ID": "conveyor_default",
            "AIRFLOW_CONN_CONVEYOR_DEFAULT": json.dumps(connection),
            "MLFLOW_TRACKING_URI": tracking,
            "WDBC_PATH": str(wdbc_path),
            "CONVEYOR_EXPORT_URI": f"s3://{bucket}/exports/breast_cancer",
        })
        airflow = str(BIN / "airflow")
        for name, args in (("api-server", ["api-server"]), ("scheduler", ["scheduler"]),
                           ("dag-processor", ["dag-processor"])):
            services.append(Service(name, [airflow, *args], {
                **home.env, "CONVEYOR_TEST_WORKER_NAME": name,
                "CONVEYOR_HOME": str(root / name)}, root / f"{name}.log").start())
        workers = {}
        for name in ("worker-a", "worker-b"):
            worker_home = root / name
            workers[name] = worker_home
            services.append(Service(name, [
                airflow, "celery", "worker", "--concurrency", "1",
                "--celery-hostname", f"{name}@%h", "--skip-serve-logs"], {
                **home.env, "CONVEYOR_TEST_WORKER_NAME": name,
                "CONVEYOR_HOME": str(worker_home)}, root / f"{name}.log").start())
        wait_http(f"http://127.0.0.1:{home.env['AIRFLOW__API__PORT']}/api/v2/monitor/health",
                  180, service=services[1])
        yield {"home": home, "bucket": bucket, "aws": aws, "tracking": tracking,
               "workers": workers, "services": services, "s3": s3_server}
    finally:
        for service in reversed(services):
            service.stop()


def _query(home: Any, sql: str, *params: object) -> list[tuple[Any, ...]]:
    import psycopg2

    conn = psycopg2.connect(home.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
                            .replace("postgresql+psycopg2", "postgresql"), connect_timeout=5)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        conn.close()


def _logs(cluster: dict[str, Any]) -> str:
    return "\n\n".join(f"== {s.name}\n{s.tail(40)}" for s in cluster["services"])


def test_breast_cancer_on_celery_uses_both_workers_and_only_s3(cluster: dict[str, Any]
                                                               ) -> None:
    home = cluster["home"]
    deadline = time.monotonic() + 240
    while not _query(home, "SELECT 1 FROM dag WHERE dag_id = %s AND NOT is_stale", DAG_ID):
        assert time.monotonic() < deadline, _logs(cluster)
        time.sleep(2)
    home.run("dags", "trigger", DAG_ID, "--run-id", RUN_ID)

    deadline = time.monotonic() + 600
    state = None
    while time.monotonic() < deadline:
        rows = _query(home, "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s",
                      DAG_ID, RUN_ID)
        state = rows[0][0] if rows else None
        if state in ("success", "failed"):
            break
        time.sleep(2)
    tasks = {row[0]: row[1:] for row in _query(
        home, "SELECT task_id, state, hostname FROM task_instance "
        "WHERE dag_id = %s AND run_id = %s", DAG_ID, RUN_ID)}
    done = {t for t, (s, _) in tasks.items() if s == "success"}
    assert {"ingest", "validate", "split", "train"} <= done, f"{tasks}\n{_logs(cluster)}"
    hostnames = {host for task, (_, host) in tasks.items() if task in done}
    assert hostnames == {"worker-a", "worker-b"}, tasks  # both workers ran steps

    # Artifacts went through S3 only: every finished step's outputs are in the bucket, and
    # the workers' own homes hold no artifact.
    import boto3

    s3 = boto3.client("s3", endpoint_url=cluster["s3"],
                      aws_access_key_id=cluster["aws"]["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=cluster["aws"]["AWS_SECRET_ACCESS_KEY"],
                      region_name="us-east-1")
    run_id = conveyor_run_id(DAG_ID, RUN_ID)
    prefix = f"store/{DAG_ID}/{run_id}/"
    keys = [o["Key"] for o in s3.list_objects_v2(
        Bucket=cluster["bucket"], Prefix=prefix).get("Contents", [])]
    assert {key[len(prefix):].split("/", 1)[0] for key in keys} >= done
    for worker_home in cluster["workers"].values():
        local = [p for p in worker_home.rglob("*") if p.is_file()] if worker_home.exists() else []
        assert not [p for p in local if "artifacts" in p.parts], local

    assert state == "success", f"{tasks}\n{_logs(cluster)}"
    assert {t: s for t, (s, _) in tasks.items()} == dict.fromkeys(STEPS, "success")
    assert f"{prefix}manifest.json" in keys

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=cluster["tracking"])
    experiment = client.get_experiment_by_name(DAG_ID)
    (mlflow_run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`conveyor.run_id` = '{run_id}'")
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags["conveyor.manifest"] == (
        f"s3://{cluster['bucket']}/{prefix}manifest.json")
