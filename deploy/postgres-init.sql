-- Second database on the stack's PostgreSQL: MLflow's backend store (Airflow uses the default).
CREATE DATABASE mlflow;
