"""The request sampler on a real S3-protocol server (moto on 127.0.0.1), and on a bucket that
does not exist: requests never see the Store's failure."""

from __future__ import annotations

import io

import boto3
import numpy as np
import pandas as pd

from conveyor.serving.layout import samples_uri
from conveyor.serving.runtime import ServedPrediction
from conveyor.serving.sampling import Sampler

NAMES = ["a", "b"]


def prediction(n: int) -> ServedPrediction:
    proba = np.tile([0.25, 0.75], (n, 1))
    return ServedPrediction(labels=np.asarray(["yes"] * n, dtype=object), proba=proba,
                            classes=("no", "yes"), version="4")


def test_samples_are_written_to_s3_by_hour(s3_bucket: str, s3_env: str) -> None:
    root = f"s3://{s3_bucket}/store"
    with Sampler(root, "diagnosis", rate=1.0) as sampler:
        for i in range(5):
            X = np.full((2, 2), float(i))
            assert sampler.offer(X, NAMES, prediction(2), "4", [f"r{i}a", f"r{i}b"])
    assert sampler.stats["written_rows"] == 10 and sampler.stats["errors"] == 0
    s3 = boto3.client("s3", endpoint_url=s3_env)
    prefix = samples_uri(root, "diagnosis").removeprefix(f"s3://{s3_bucket}/") + "/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)["Contents"]]
    assert len(keys) == 1 and keys[0].endswith(".parquet") and "/date=" in keys[0], keys
    body = s3.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read()
    frame = pd.read_parquet(io.BytesIO(body))
    assert list(frame.columns) == [*NAMES, "_prediction", "_proba_no", "_proba_yes",
                                   "_request_id", "_ts", "_version"]
    assert frame["_request_id"].tolist()[:2] == ["r0a", "r0b"] and len(frame) == 10


def test_a_missing_bucket_costs_the_batch_not_the_request(s3_env: str) -> None:
    sampler = Sampler("s3://no-such-bucket-for-samples/store", "diagnosis", rate=1.0,
                      flush_seconds=3600)
    X = np.zeros((3, 2))
    assert sampler.offer(X, NAMES, prediction(3), "4", "r") is True
    sampler.flush()
    assert sampler.offer(X, NAMES, prediction(3), "4", "r") is True
    sampler.close()
    stats = sampler.stats
    assert stats["errors"] == 2 and stats["dropped_rows"] == 6 and stats["written_rows"] == 0
