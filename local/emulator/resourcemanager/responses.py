"""ResourceManager 2020-03-31: request parsing and response shapes."""

from __future__ import annotations

from local.emulator.core import Service

service = Service("resourcemanager", "2020-03-31", "resourcemanager.aliyuncs.com")
