#!/usr/bin/env bash
# MLflow tracking server: PostgreSQL backend store, artifacts on S3 (MinIO in the compose
# stack), served through the server (--serve-artifacts) so clients need no S3 credentials.
set -euo pipefail
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (postgresql://...)}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION (s3://bucket/mlflow)}"
exec mlflow server \
    --host 0.0.0.0 --port "${MLFLOW_PORT:-5000}" \
    --backend-store-uri "${MLFLOW_BACKEND_STORE_URI}" \
    --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION}" \
    --serve-artifacts \
    --workers "${MLFLOW_WORKERS:-2}" \
    --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-mlflow,mlflow:5000,localhost,localhost:5000,127.0.0.1:5000}"
