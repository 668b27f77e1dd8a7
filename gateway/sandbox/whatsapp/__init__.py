"""The WhatsApp Cloud API stand-in (see `sandbox.py`): `rules` (Meta's limits and errors),
`notifications` (the number's state and the signed posts to the callback URL), `cloud_api`
(sending and media), `sandbox` (the client's side and the chat page)."""

from gateway.sandbox.whatsapp.rules import (
    _META_READING,
    DEFAULT_TEMPLATES,
    DISPLAY_NUMBER,
    MEDIA_LIMITS,
    SIGNATURE_HEADER,
    WABA_ID,
    WINDOW_SECONDS,
    GraphError,
    Sent,
)
from gateway.sandbox.whatsapp.sandbox import WhatsAppSandbox

__all__ = [
    "DEFAULT_TEMPLATES",
    "DISPLAY_NUMBER",
    "MEDIA_LIMITS",
    "SIGNATURE_HEADER",
    "WABA_ID",
    "WINDOW_SECONDS",
    "_META_READING",
    "GraphError",
    "Sent",
    "WhatsAppSandbox",
]
