"""Which RAM users ramflow may change: those whose name starts with the managed-user prefix.

RAM can scope a policy to user ARNs by name (`acs:ram:*:<account>:user/<prefix>*`) but has no
condition key on a RAM user's tags (see local/roles.py for the sources), so the prefix is the
boundary the roles' policies enforce, and this check is the same boundary in code: a request for
another name is rejected, and every user-level write is refused before it reaches the cloud.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from shared.errors import ConfigError, GuardDenied, OutOfScope

log = logging.getLogger("ramflow.scope")

PREFIX = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


@dataclass(frozen=True)
class UserScope:
    prefix: str = ""

    def contains(self, user_name: str) -> bool:
        return user_name.startswith(self.prefix)

    def check(self, user_name: str, action: str) -> None:
        if not self.contains(user_name):
            raise OutOfScope(user_name, action, self.prefix)


def check_configuration(prefix: str, allow_unscoped: bool) -> None:
    """At every cold start: a prefix, or the unscoped mode by explicit choice (and a warning)."""
    if prefix:
        if not PREFIX.fullmatch(prefix):
            raise ConfigError("RAMFLOW_MANAGED_USER_PREFIX must be 1 to 32 of A-Z a-z 0-9 . _ -")
        return
    if not allow_unscoped:
        raise ConfigError(
            "RAMFLOW_MANAGED_USER_PREFIX is not set: set it (and render the roles' policies with it), "
            "or set RAMFLOW_ALLOW_UNSCOPED_USERS=true to let ramflow change users of any name"
        )
    log.warning(
        "RAMFLOW_ALLOW_UNSCOPED_USERS: no managed-user prefix, the roles' policies cannot tell ramflow's "
        "users from others; only the code's managed-by=ramflow check protects them"
    )


def check_managed_name(user_name: str, prefix: str) -> None:
    """A requested logon name outside the prefix is rejected with the ticket, before anything is done."""
    if not user_name.startswith(prefix):
        raise GuardDenied(
            [
                {
                    "field": "data.user.logon_name",
                    "reason": f"must start with the managed-user prefix {prefix!r}",
                }
            ]
        )
