"""FC handler `access-revoked`: remove one ticket's grants (a partial outcome is retried)."""

from shared.flows.revoke import revoke
from shared.handler import event_function
from shared.models.events import ACCESS_REVOKED

handler = event_function({ACCESS_REVOKED: revoke})
