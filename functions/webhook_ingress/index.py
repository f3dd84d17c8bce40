"""FC handler `webhook-ingress`: Standard Webhooks in, the owning lifecycle function behind (HTTP trigger); the code is in `shared/http/webhook_ingress.py`."""

from shared.http.webhook_ingress import handle_event
from shared.logs import audited

handler = audited(handle_event)
