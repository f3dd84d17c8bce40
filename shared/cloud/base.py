"""What every typed gateway shares: one call path through the runner, absence as None, paging."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

from shared.cloud.retry import CloudRunner
from shared.errors import EntityNotFound

T = TypeVar("T")
Req = TypeVar("Req")

Timestamp = Annotated[datetime | None, BeforeValidator(lambda value: value or None)]
"""The cloud's `2015-01-23T12:33:18Z` dates; an empty or missing one is None."""


class CloudModel(BaseModel):
    """A typed, immutable result of a cloud call."""

    model_config = ConfigDict(frozen=True)


class SdkGateway:
    """Typed methods over one official SDK client; subclasses hold no business rules."""

    page_size = 100
    """Items asked for per page of a list call (the API's maximum)."""

    def __init__(self, sdk: Any, runner: CloudRunner):
        self._sdk = sdk
        self._runner = runner

    def _call(
        self,
        method: Callable[..., Any],
        request: object | None = None,
        *,
        action: str = "",
        idempotent: bool | None = None,
    ) -> Any:
        """The response body of `method(request)`; the action is named by the request's class."""
        action = action or type(request).__name__.removesuffix("Request")
        args = () if request is None else (request,)
        return self._runner.call(action, lambda: method(*args), idempotent=idempotent).body

    def _find(self, method: Callable[..., Any], request: object) -> Any | None:
        """Like `_call`, but a missing entity (`EntityNotExist.*`) is None rather than an error."""
        try:
            return self._call(method, request)
        except EntityNotFound:
            return None

    def _pages(
        self,
        method: Callable[[Req], Any],
        request: Req,
        items: Callable[[Any], Iterable[T]],
        next_page: Callable[[Req, Any], bool],
    ) -> list[T]:
        """Every item of a paged list: `next_page` moves `request` on and says whether to go on."""
        found: list[T] = []
        while True:
            body = self._call(method, request)
            found.extend(items(body))
            if not next_page(request, body):
                return found


def by_marker(request: Any, body: Any) -> bool:
    """RAM and IMS lists: `IsTruncated` plus an opaque `Marker`."""
    if body.is_truncated and body.marker:
        request.marker = body.marker
        return True
    return False


def by_next_token(request: Any, body: Any) -> bool:
    """IMS ListTagResources: `IsTruncated` plus `NextToken`."""
    if body.is_truncated and body.next_token:
        request.next_token = body.next_token
        return True
    return False


def by_page_number(request: Any, body: Any) -> bool:
    """ResourceManager lists: `PageNumber` and `PageSize` against `TotalCount`."""
    page, size, total = int(body.page_number or 1), int(body.page_size or 0), int(body.total_count or 0)
    if size and page * size < total:
        request.page_number = page + 1
        return True
    return False


def nested(container: Any, field: str) -> list[Any]:
    """The SDK wraps lists in an object (`Users.User`); either level may be missing."""
    return list(getattr(container, field, None) or []) if container is not None else []
