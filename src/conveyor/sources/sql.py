"""``data.source: sql``: the rows of a query, through SQLAlchemy, read in chunks.

    data: {source: sql, url: "postgresql://reader@db.example:5432/sales", query: "SELECT ..."}
    data: {source: sql, url_env: SALES_DB_URL, query: "SELECT ..."}

A password never stands in a spec (a URL with one is refused): ``url_env`` names an
environment variable that holds the whole URL, or the driver finds it where it looks
(``PGPASSWORD``, ``~/.pgpass``). The URL is shown and recorded with its password masked.
The query runs in a transaction that is rolled back, and its rows are fetched through a
server-side cursor, ``chunk_rows`` at a time (ADR 0044).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.sources.base import BaseSource, SourceError, SourceUnreachableError

__all__ = ["SqlSource", "SqlSourceReader"]

log = logging.getLogger(__name__)


class SqlSource(BaseModel):
    """A query's rows, from a database SQLAlchemy can reach."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["sql"]
    url: str | None = Field(default=None, description="An SQLAlchemy URL without a password.")
    url_env: str | None = Field(default=None,
                                description="An environment variable holding the URL.")
    query: str = Field(min_length=1)
    chunk_rows: int = Field(default=50_000, gt=0)
    connect_timeout: int = Field(default=10, gt=0, le=600, description="Seconds.")

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                raise ValueError("inline secret: the URL holds a password; put the whole URL "
                                 "in an environment variable and name it in data.url_env, "
                                 "or let the driver find the password (PGPASSWORD, ~/.pgpass)")
        return value

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> SqlSource:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        return self


class SqlSourceReader(BaseSource):
    """Rows of an SQL query (``data.source: sql``)."""

    name = "sql"
    spec_model = SqlSource

    def read(self, config: Any, base_dir: Path) -> tuple[Any, dict[str, Any]]:
        from conveyor.store.tables import concat_frames

        chunks, facts = self.scan(config, base_dir)
        return concat_frames(chunks), facts

    def scan(self, config: Any, base_dir: Path) -> tuple[Iterator[Any], dict[str, Any]]:
        url, key = _url(config)
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise SourceError(f"not an SQLAlchemy URL: {_first_line(exc)}", key=key) from None
        shown = parsed.render_as_string(hide_password=True)
        facts = {"uri": shown, "bytes": 0, "format": "sql", "first_line": None,
                 "lines": None}
        return _rows(config, parsed, shown, key), facts


def _url(config: SqlSource) -> tuple[str, str]:
    if config.url is not None:
        return config.url, "data.url"
    value = os.environ.get(config.url_env or "")
    if not value:
        raise SourceError(f"the environment variable {config.url_env} that should hold the "
                          "database URL is not set", key="data.url_env")
    return value, "data.url_env"


def _rows(config: SqlSource, url: Any, shown: str, key: str) -> Iterator[Any]:
    import pandas as pd
    from sqlalchemy import create_engine, exc, text

    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("psycopg2",
                                                                             "psycopg"):
        connect_args["connect_timeout"] = config.connect_timeout
    elif url.get_backend_name() == "sqlite":
        connect_args["timeout"] = config.connect_timeout
    try:
        engine = create_engine(url, connect_args=connect_args, poolclass=_null_pool())
    except (exc.NoSuchModuleError, ImportError) as error:
        raise SourceError(f"no SQLAlchemy driver for {url.drivername!r}: "
                          f"{_first_line(error)}; install it", key=key) from None
    rows = 0
    try:
        try:
            connection = engine.connect()
        except exc.DBAPIError as error:
            problem = SourceUnreachableError if _no_answer(error) else SourceError
            raise problem(f"cannot connect to {shown}: {_db_message(error)}", key=key) from None
        with connection:
            # a server-side cursor: the rows come chunk_rows at a time, not all at once
            streaming = connection.execution_options(stream_results=True,
                                                     max_row_buffer=config.chunk_rows)
            try:
                for chunk in pd.read_sql_query(text(config.query), streaming,
                                               chunksize=config.chunk_rows):
                    rows += len(chunk)
                    yield chunk
            except (exc.DBAPIError, pd.errors.DatabaseError) as error:
                # pandas wraps the driver's error ("Execution failed on sql ...")
                cause = error.__cause__ if isinstance(error, pd.errors.DatabaseError) and \
                    error.__cause__ is not None else error
                raise SourceError(f"the query failed on {shown}: {_db_message(cause)}",
                                  key="data.query") from None
            except exc.SQLAlchemyError as error:
                raise SourceError(f"the query failed: {_first_line(error)}",
                                  key="data.query") from None
            finally:
                connection.rollback()  # whatever the query did is not kept
    finally:
        engine.dispose()
    if rows == 0:
        raise SourceError(f"the query returned no rows from {shown}", key="data.query")
    log.info("read %d rows from %s", rows, shown)


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool  # one connection, closed when done: nothing lingers in a worker


#: What drivers say when no server answered (psycopg, libpq, PyMySQL, pyodbc), as opposed
#: to a server that answered and refused (``FATAL: database "x" does not exist``).
_NO_ANSWER = re.compile(
    r"connection refused|timeout expired|timed out|could not translate host|failed to "
    r"resolve host|name or service not known|no route to host|network is unreachable|"
    r"can't connect to|server closed the connection unexpectedly", re.IGNORECASE)


def _no_answer(error: Any) -> bool:
    """Whether a failed connection never reached a server (exit 1, retried; ADR 0053)."""
    return bool(_NO_ANSWER.search(str(getattr(error, "orig", None) or error)))


def _db_message(error: Any) -> str:
    """The database's own first line (``relation "x" does not exist``), without the SQL."""
    return _first_line(getattr(error, "orig", None) or error)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
