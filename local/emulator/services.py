"""Every API the emulator speaks, in one list."""

from __future__ import annotations

from local.emulator.core import Service


def all_services() -> list[Service]:
    from local.emulator.eventbridge.responses import service as eventbridge
    from local.emulator.ims.responses import service as ims
    from local.emulator.ram.responses import service as ram
    from local.emulator.resourcemanager.responses import service as resourcemanager
    from local.emulator.sts.responses import service as sts

    return [ram, ims, sts, resourcemanager, eventbridge]
