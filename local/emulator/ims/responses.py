"""IMS 2019-08-15 (user tags): request parsing and response shapes."""

from __future__ import annotations

from local.emulator.core import Service

service = Service("ims", "2019-08-15", "ims.aliyuncs.com")
