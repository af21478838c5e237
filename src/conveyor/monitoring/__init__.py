"""Watching a served model: reference profiles, drift statistics, reports, retrain triggers
(DESIGN.md, "Monitoring")."""
