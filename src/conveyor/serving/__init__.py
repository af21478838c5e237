"""Serving the production model: model resolution and loading, the HTTP app, hot reload,
request sampling and batch scoring (DESIGN.md, "Serving")."""
