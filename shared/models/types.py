"""The CloudEvent types ramflow handles.

Apart from the models (`shared.models.events`) so that routing tables can name them without building
every event model: the token vendor, which routes no event, never loads those.
"""

USER_REQUESTED = "ramflow.user.requested"
ACCESS_APPROVED = "ramflow.access.approved"
ACCESS_REVOKED = "ramflow.access.revoked"
USER_OFFBOARDED = "ramflow.user.offboarded"
USER_REHIRED = "ramflow.user.rehired"
KEY_ROTATION_REQUESTED = "ramflow.key.rotation_requested"
OFFBOARD_UNIT = "ramflow.offboard.unit"
"""Internal: one user of a bulk offboarding job, handed by user-offboarded to another of its own
invocations (asynchronous InvokeFunction). EventBridge rules and the webhook ingress never route it."""
KEY_ROTATION_DUE = "ramflow.key.rotation_due"
"""Internal: reconcile found a user's key past its age and hands its rotation to key-rotation
(asynchronous InvokeFunction). It names only the user and the key; everything else (who receives the
new secret, sealed to which key) comes from the ledger. EventBridge rules and the webhook ingress
never route it."""
