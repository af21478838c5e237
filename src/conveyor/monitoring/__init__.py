"""Watching a served model (DESIGN.md, "Monitoring"; docs/monitoring.md).

* :mod:`~conveyor.monitoring.profile`: the reference profile ``train`` saves in the model
  folder;
* :mod:`~conveyor.monitoring.drift`: PSI, KS, missing and out-of-range shares, live metrics;
* :mod:`~conveyor.monitoring.report`: the self-contained HTML report;
* :mod:`~conveyor.monitoring.alerts`: the webhook alert and the Airflow REST trigger;
* :mod:`~conveyor.monitoring.check`: one check, as ``conveyor monitor`` and the
  ``<name>_monitor`` DAG run it.

Nothing is imported here: ``train`` imports only the profile module.
"""
