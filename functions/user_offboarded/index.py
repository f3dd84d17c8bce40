"""FC handler `user-offboarded`: disable at once, then delete, a leaver's RAM users (a partial outcome
is retried); `user.rehired` clears the leaver record the offboarding left; `offboard.unit` is one user of
a large offboarding, handed here by this function itself (shared/flows/fanout.py)."""

from shared.flows.fanout import run_unit
from shared.flows.offboard import offboard, rehire_event
from shared.handler import event_function
from shared.models.events import OFFBOARD_UNIT, USER_OFFBOARDED, USER_REHIRED

handler = event_function({USER_OFFBOARDED: offboard, USER_REHIRED: rehire_event, OFFBOARD_UNIT: run_unit})
