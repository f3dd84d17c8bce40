"""FC handler `key-rotation`: rotate a managed user's AccessKey, on request or for reconcile when the
key is past its age. Its role holds only the AccessKey actions on managed users."""

from shared.flows.keys import rotation_due, rotation_requested
from shared.handler import event_function
from shared.models.events import KEY_ROTATION_DUE, KEY_ROTATION_REQUESTED

handler = event_function({KEY_ROTATION_REQUESTED: rotation_requested, KEY_ROTATION_DUE: rotation_due})
