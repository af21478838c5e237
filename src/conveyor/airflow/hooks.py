"""``ConveyorHook``: the ``conveyor`` connection type.

A ``conveyor`` connection tells tasks where the Store and the MLflow tracking server are,
so one spec runs unchanged on a laptop and on a cluster. It holds no secrets of its own:
S3 and MLflow credentials stay in the workers' environment (``AWS_*``, ``MLFLOW_TRACKING_*``)
or in the client libraries' profiles, where those clients look for them.

Extras (JSON): ``{"store_root": "s3://bucket/conveyor", "tracking_uri": "http://mlflow:5000"}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseHook

from conveyor.errors import BadInputError

__all__ = ["ConveyorHook"]

_EXTRA_TO_KEY = {"store_root": "store.root", "tracking_uri": "tracking.uri"}


class ConveyorHook(BaseHook):
    """Read a ``conveyor`` connection and turn it into spec overrides.

    Args:
        conveyor_conn_id: the connection id (``conveyor_default`` by default).
    """

    conn_name_attr = "conveyor_conn_id"
    default_conn_name = "conveyor_default"
    conn_type = "conveyor"
    hook_name = "Conveyor"

    _ui_fields: ClassVar[list[str]] = ["host", "schema", "login", "password", "port"]

    def __init__(self, conveyor_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conveyor_conn_id = conveyor_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hide the generic fields: a ``conveyor`` connection only has extras."""
        return {
            "hidden_fields": cls._ui_fields,
            "relabeling": {},
            "placeholders": {
                "extra": '{"store_root": "s3://bucket/conveyor", "tracking_uri": "http://mlflow:5000"}'
            },
        }

    def spec_overrides(self) -> list[str]:
        """``store.root=...`` and ``tracking.uri=...`` overrides from the connection's extras.

        Raises:
            BadInputError: the extras hold a key other than ``store_root`` and ``tracking_uri``.
        """
        extra = self.get_connection(self.conveyor_conn_id).extra_dejson
        unknown = sorted(set(extra) - set(_EXTRA_TO_KEY))
        if unknown:
            raise BadInputError(
                f"connection {self.conveyor_conn_id!r}: unknown extras {unknown}; "
                f"expected {sorted(_EXTRA_TO_KEY)}"
            )
        return [f"{_EXTRA_TO_KEY[key]}={value}" for key, value in sorted(extra.items()) if value]
