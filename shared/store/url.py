"""`RAMFLOW_STORE` → a backend."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.errors import ConfigError
from shared.store.base import KeyValueBackend
from shared.store.memory import MemoryBackend
from shared.store.sqlite import SqliteBackend

SUPPORTED = "sqlite:///path, memory://, redis://host:port/db, rediss://host:port/db, tablestore://host/table"


def open_store(url: str) -> KeyValueBackend:
    """Open the backend a store URL names.

    - `sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (parent folders are created);
    - `memory://` (a fresh, empty, in-process store);
    - `redis://[user:password@]host:port/db` or `rediss://…`; `?namespace=` sets the key prefix
      (default `ramflow:`), every other query option goes to redis-py;
    - `tablestore://<instance>.<region>.ots.aliyuncs.com/<table>` (see shared/store/tablestore.py).
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ConfigError(
                "store URL sqlite:// needs a path: sqlite:///relative.db or sqlite:////abs/path.db"
            )
        return SqliteBackend(path)
    if scheme == "memory":
        return MemoryBackend()
    if scheme in ("redis", "rediss"):
        from shared.store.redis import RedisBackend  # redis-py loads only where Redis is the store

        redis_url, namespace = _pop_namespace(url)
        return RedisBackend.from_url(redis_url, namespace)
    if scheme == "tablestore":
        from shared.store.tablestore import TablestoreBackend  # the SDK loads only when it is used

        return TablestoreBackend.from_url(url)
    raise ConfigError(f"unsupported store URL scheme {scheme or '(none)'!r}; use one of {SUPPORTED}")


def _pop_namespace(url: str) -> tuple[str, str]:
    from shared.store.redis import DEFAULT_NAMESPACE

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    namespaces = [value for name, value in query if name == "namespace"]
    rest = urlencode([(name, value) for name, value in query if name != "namespace"])
    return urlunsplit(parts._replace(query=rest)), (namespaces[-1] if namespaces else DEFAULT_NAMESPACE)
