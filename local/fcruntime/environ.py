"""Each function instance's own credential variables, although one process hosts every function.

In FC every instance is its own process, and FC puts its function's role session in
`ALIBABA_CLOUD_ACCESS_KEY_ID|SECRET|SECURITY_TOKEN` (python3.12 has it only there). Here functions
with different roles run side by side in threads of one process, so the process environment cannot
hold them: `os.environ` is replaced once by a view that answers those three variables from the
invoking thread's session, and everything else from the real environment (same storage, so
`putenv` and every other reader see what they always did).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CREDENTIAL_ENV = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
)
_local = threading.local()
_install_lock = threading.Lock()
_Base: Any = type(os.environ)


def _overlay() -> dict[str, str | None] | None:
    return getattr(_local, "values", None)


class _InstanceEnviron(_Base):
    def __getitem__(self, key: str) -> str:
        overlay = _overlay()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return str(super().__getitem__(key))

    def __iter__(self) -> Iterator[str]:
        overlay = _overlay()
        if overlay is None:
            yield from super().__iter__()
            return
        for key in super().__iter__():
            if key not in overlay:
                yield key
        yield from (k for k, v in overlay.items() if v is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        overlay = _overlay()
        if overlay is not None and key in overlay:
            return overlay[key] is not None
        return bool(super().__contains__(key))


def install_instance_environ() -> None:
    """Idempotent: replace `os.environ` by the per-thread view (sharing the same storage)."""
    with _install_lock:
        current: Any = os.environ  # its storage (`_data`) is private to os, absent from the stubs
        if isinstance(current, _InstanceEnviron):
            return
        view = _InstanceEnviron(
            current._data, current.encodekey, current.decodekey, current.encodevalue, current.decodevalue
        )
        os.environ = view  # noqa: B003 - the same storage, a new view of it


@contextmanager
def instance_credentials(credentials: Any) -> Iterator[None]:
    """Inside the block, this thread's credential variables are `credentials`' (or absent)."""
    if credentials is None:
        values: dict[str, str | None] = dict.fromkeys(CREDENTIAL_ENV)
    else:
        values = dict(
            zip(
                CREDENTIAL_ENV,
                (
                    credentials.access_key_id,
                    credentials.access_key_secret,
                    credentials.security_token or None,
                ),
                strict=True,
            )
        )
    previous = _overlay()
    _local.values = values
    try:
        yield
    finally:
        _local.values = previous
