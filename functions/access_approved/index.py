"""FC handler `access-approved`: carry out an approved ticket; rotate a user's AccessKey on request
(the provisioning role is the only one that may create keys)."""

from shared.flows.keys import rotation_requested
from shared.flows.provision import approve
from shared.handler import event_function
from shared.models.events import ACCESS_APPROVED, KEY_ROTATION_REQUESTED

handler = event_function({ACCESS_APPROVED: approve, KEY_ROTATION_REQUESTED: rotation_requested})
