"""ResourceManager state of one account: resource groups and policy attachments."""

from __future__ import annotations


class ResourceManagerBackend:
    def __init__(self, account_id: str):
        self.account_id = account_id
