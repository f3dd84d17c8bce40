"""The emulator's errors are classes, one per code, declared in each service's `exceptions.py`."""

from __future__ import annotations

import importlib
import inspect
import re
import string

import pytest

from local.emulator.errors import ApiError, DeclaredError
from local.emulator.ram.exceptions import (
    DeleteConflictPolicyAttached,
    EntityNotExistAttachment,
    LimitExceededAttachment,
    ParameterTooLong,
)
from local.emulator.sts.exceptions import NoPermission, NotTrusted

MODULES = [
    "local.emulator.errors",
    "local.emulator.ram.exceptions",
    "local.emulator.ims.exceptions",
    "local.emulator.sts.exceptions",
    "local.emulator.resourcemanager.exceptions",
    "local.emulator.eventbridge.exceptions",
]


def _declared() -> list[type[DeclaredError]]:
    found = []
    for name in MODULES:
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            if (
                issubclass(cls, DeclaredError)
                and cls is not DeclaredError
                and cls.__module__ == name
                and not cls.__name__.startswith("_")
            ):
                found.append(cls)
    return found


def _fields(*templates: str) -> set[str]:
    return {field for t in templates for _, field, _, _ in string.Formatter().parse(t) if field}


@pytest.mark.parametrize("cls", _declared(), ids=lambda c: f"{c.__module__.split('.')[-2]}.{c.__name__}")
def test_every_declared_error_renders_a_code_a_status_and_a_message(cls: type[DeclaredError]) -> None:
    err = cls.__new__(cls)
    DeclaredError.__init__(err, **{f: "Field" for f in _fields(cls.code_template, cls.message_template)})
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]*(\.[A-Za-z0-9]+)*", err.code)
    assert 400 <= err.status < 600
    assert err.message and "{" not in err.message
    assert str(err) == f"{err.code}: {err.message}"


def test_the_five_services_declare_their_errors() -> None:
    modules = {cls.__module__ for cls in _declared()}
    assert modules == set(MODULES)


def test_a_family_class_puts_its_parameter_in_the_code() -> None:
    assert ParameterTooLong("UserName").code == "InvalidParameter.UserName.Length"
    assert EntityNotExistAttachment("Group", "P", "g1").code == "EntityNotExist.Group.Policy"
    assert LimitExceededAttachment("User", "System", 20).message == (
        "The system policy count of the user beyond the current limit of 20."
    )


def test_deleting_a_policy_attached_to_a_role_is_the_roles_conflict() -> None:
    assert DeleteConflictPolicyAttached("Role").code == "DeleteConflict.Role.Policy"
    assert DeleteConflictPolicyAttached("User").code == "DeleteConflict.Policy.User"
    assert DeleteConflictPolicyAttached("User").status == 409


def test_refusals_sharing_a_code_are_subclasses_with_their_own_message() -> None:
    refused = NotTrusted()
    assert isinstance(refused, NoPermission) and isinstance(refused, ApiError)
    assert (refused.code, refused.status) == (NoPermission().code, 403)
    assert refused.message != NoPermission().message
