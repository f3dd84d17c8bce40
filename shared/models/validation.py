"""Turn pydantic's errors into ramflow's `[{"field", "reason"}]` lists.

Field paths read like the JSON they point at (`data.grants[1].params.instance_id`). Reasons come
from the rule, never from the input: a hostile key or value is neither echoed nor allowed to
bloat a reply or an audit line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)

MAX_ERRORS = 50
MAX_REASON_CHARS = 200
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNION_TAG = re.compile(r"<[a-z_]+>")  # how tagged unions (grants) mark their branch
_VALUE_ERROR_PREFIX = "Value error, "


def join_path(prefix: str, loc: Sequence[str | int]) -> str:
    """`("grants", 0, "<policy>", "type")` under `data` → `data.grants[0].type`."""
    path = prefix
    for segment in loc:
        if isinstance(segment, int):
            path += f"[{segment}]"
        elif _UNION_TAG.fullmatch(segment) or segment == "[key]":
            continue  # union tags ("<policy>") and pydantic's dict-key marker are not part of the JSON
        elif _SAFE_SEGMENT.fullmatch(segment):
            path += f".{segment}" if path else segment
        else:
            path += "[?]"  # a key from the input that is not safe to repeat
    return path or "event"


def _reason(error: ErrorDetails) -> str:
    ctx_error = (error.get("ctx") or {}).get("error")
    reason = str(ctx_error) if isinstance(ctx_error, ValueError) else error["msg"]
    reason = reason.removeprefix(_VALUE_ERROR_PREFIX)
    if error["type"] == "missing":
        reason = "required"
    elif error["type"] == "extra_forbidden":
        reason = "not an accepted field"
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"


def field_errors(exc: ValidationError, *, prefix: str = "") -> list[dict[str, str]]:
    """The errors of `exc` as `{"field", "reason"}` dicts, at most MAX_ERRORS of them."""
    errors: list[dict[str, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        entry = {"field": join_path(prefix, error["loc"]), "reason": _reason(error)}
        if entry not in errors:
            errors.append(entry)
    if len(errors) > MAX_ERRORS:
        errors = errors[:MAX_ERRORS] + [{"field": prefix or "event", "reason": "further errors left out"}]
    return errors


def validate(model: type[M], data: Any, *, prefix: str = "") -> M:
    """`model.model_validate(data)`, raising ValidationFailed with field paths under `prefix`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, prefix=prefix)) from None
