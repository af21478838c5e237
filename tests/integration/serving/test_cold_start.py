"""A registered version served from the embedded registry without importing MLflow
(ADR 0037): read with sqlite3, its files copied from the storage folder and verified, and
every case it does not know handed to MLflow.

A model is trained and promoted through the public API on the test's own home.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import conveyor
from conveyor.errors import BadInputError
from conveyor.serving.model import ModelRefusedError, open_model, resolve
from conveyor.tracking import mlflow_scope
from conveyor.tracking.sqlite_registry import KNOWN_REVISIONS, read_version

pytestmark = pytest.mark.slow
SPEC = Path(__file__).resolve().parents[3] / "examples" / "breast_cancer" / "pipeline.yaml"
MODEL = "breast_cancer_classifier"


def client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def test_mlflow_head_revision_is_known() -> None:
    """When MLflow's schema moves on, the direct read switches itself off: this says so."""
    import mlflow.store.db_migrations as migrations
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    folder = Path(migrations.__file__).parent
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert set(heads) <= KNOWN_REVISIONS, f"check sqlite_registry against revision {heads}"


def test_registered_version_is_read_and_verified_without_mlflow(conveyor_home: Path) -> None:
    home = conveyor_home
    result = conveyor.run(SPEC, (), profile="sklearn", home=home)
    assert result.status == "ok", result
    assert conveyor.promote(spec=SPEC, home=home).production_after == "1"
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    mlflow = client(tracking)

    # the direct read says what MLflow says
    expected = mlflow.get_model_version_by_alias(MODEL, "production")
    for stored in (read_version(tracking, MODEL, alias="production"),
                   read_version(tracking, MODEL, number="1")):
        assert stored is not None
        assert (stored.version, stored.run_id, stored.tags) == \
            (str(expected.version), expected.run_id, dict(expected.tags))
        assert stored.storage_location and stored.storage_location.startswith("file://")

    # what it does not know goes to MLflow: a missing alias or version, "latest"
    assert read_version(tracking, MODEL, alias="staging") is None
    assert read_version(tracking, MODEL, number="9") is None
    assert read_version(tracking, MODEL, alias="latest") is None
    with pytest.raises(BadInputError, match="does not exist"):
        resolve(f"models:/{MODEL}@staging", tracking_uri=tracking)

    # a user's process: served without importing MLflow, same predictions as MLflow's pyfunc
    script = (
        "import sys, json\n"
        "from conveyor.serving.model import open_model\n"
        f"m = open_model('models:/{MODEL}@production', tracking_uri={tracking!r})\n"
        "import pandas as pd\n"
        "rows = json.loads((m.folder / 'input_example.json').read_text())\n"
        "frame = pd.DataFrame(rows['data'], columns=rows['columns'])\n"
        "print(json.dumps({'mlflow': 'mlflow' in sys.modules, 'version': m.identity.version,"
        " 'proba': m.predict(frame).proba.tolist()}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["mlflow"] is False and answer["version"] == "1"
    loaded = open_model(f"models:/{MODEL}/1", tracking_uri=tracking)
    rows = json.loads((loaded.folder / "input_example.json").read_text())
    frame = pd.DataFrame(rows["data"], columns=rows["columns"])
    import mlflow.pyfunc

    with mlflow_scope(tracking):
        reference = mlflow.pyfunc.load_model(f"models:/{MODEL}/1").predict(frame)
    labels = np.asarray(loaded.classes, dtype=object)[np.asarray(answer["proba"]).argmax(axis=1)]
    assert labels.tolist() == np.asarray(reference).tolist()
    assert np.allclose(answer["proba"], loaded.estimator.predict_proba(frame))

    # a deleted version is not read (MLflow hides it too)
    storage = Path(read_version(tracking, MODEL, number="1").storage_location
                   .removeprefix("file://"))
    copy = home / "copy.db"
    shutil.copy(home / "mlflow.db", copy)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE model_versions SET current_stage = 'Deleted_Internal'")
    assert read_version(f"sqlite:///{copy}", MODEL, number="1") is None
    # an unknown schema revision is not read either
    shutil.copy(home / "mlflow.db", copy)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    assert read_version(f"sqlite:///{copy}", MODEL, alias="production") is None
    assert read_version(tracking, MODEL, alias="production") is not None

    # the copy is what is checked: an altered file or a symbolic link is refused
    (storage / "extra.txt").symlink_to(storage / "MLmodel")
    with pytest.raises(ModelRefusedError, match="symbolic link"):
        open_model(f"models:/{MODEL}@production", tracking_uri=tracking)
    (storage / "extra.txt").unlink()
    artifact = storage / "model.skops"
    artifact.write_bytes(artifact.read_bytes() + b"\0tampered")
    with pytest.raises(ModelRefusedError, match="do not match"):
        open_model(f"models:/{MODEL}@production", tracking_uri=tracking)
