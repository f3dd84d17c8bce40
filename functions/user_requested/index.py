"""FC handler `user-requested`: validate, record and plan a `ramflow.user.requested` ticket."""

from shared.flows.provision import request
from shared.handler import event_function
from shared.models.events import USER_REQUESTED

handler = event_function({USER_REQUESTED: request})
