"""FC handler `access-approved`: carry out an approved ticket."""

from shared.flows.provision import approve
from shared.handler import event_function
from shared.models.events import ACCESS_APPROVED

handler = event_function({ACCESS_APPROVED: approve})
