"""FC handler `credential-pickup`: a ticket's sealed secret for its requester (HTTP trigger); the code is in `shared/http/credential_pickup.py`."""

from shared.http.credential_pickup import handle_event
from shared.logs import audited

handler = audited(handle_event)
