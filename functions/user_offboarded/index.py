"""FC handler `user-offboarded`: disable at once, then delete, a leaver's RAM users (a partial outcome is retried)."""

from shared.flows.offboard import offboard
from shared.handler import event_function
from shared.models.events import USER_OFFBOARDED

handler = event_function({USER_OFFBOARDED: offboard})
