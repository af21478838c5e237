#!/bin/sh
# Create the buckets of the stack on MinIO once it answers (runs in the minio/mc image).
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
until mc alias set conveyor "${MINIO_ENDPOINT:-http://minio:9000}" \
        "${MINIO_ROOT_USER}" "${MINIO_ROOT_PASSWORD}" >/dev/null 2>&1; do
    echo "waiting for MinIO..."; sleep 2
done
for bucket in ${CONVEYOR_BUCKETS:-conveyor mlflow}; do
    mc mb --ignore-existing "conveyor/${bucket}"
done
echo "buckets ready: ${CONVEYOR_BUCKETS:-conveyor mlflow}"
