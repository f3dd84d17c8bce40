"""RAM state of one account: plain Python objects you can read in a debugger."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AccessKey:
    access_key_id: str
    secret: str
    status: str = "Active"
    create_date: str = ""


@dataclass
class User:
    user_name: str
    user_id: str
    display_name: str = ""
    email: str = ""
    mobile_phone: str = ""
    comments: str = ""
    create_date: str = ""
    update_date: str = ""
    access_keys: dict[str, AccessKey] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class RamBackend:
    def __init__(self, account_id: str, alias: str):
        self.account_id = account_id
        self.alias = alias
        self.users: dict[str, User] = {}

    def find_access_key(self, key_id: str) -> tuple[User, AccessKey] | None:
        for user in self.users.values():
            key = user.access_keys.get(key_id)
            if key is not None:
                return user, key
        return None
