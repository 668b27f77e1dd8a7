"""The Telegram Bot API stand-in (see `sandbox.py`): `rules` (limits, markup, errors),
`methods` (the Bot API's calls over the chats it keeps), `sandbox` (the client's side: updates
to the webhook, and the chat page)."""

from gateway.sandbox.telegram.rules import (
    _BOT_API_READING,
    BOT_USERNAME,
    NOT_MODIFIED,
    PHOTO_MAX,
    QUERY_INVALID,
    SECRET_HEADER,
    UPLOAD_MAX,
    ApiError,
    SentCall,
    Upload,
)
from gateway.sandbox.telegram.sandbox import TelegramSandbox

__all__ = [
    "BOT_USERNAME",
    "NOT_MODIFIED",
    "PHOTO_MAX",
    "QUERY_INVALID",
    "SECRET_HEADER",
    "UPLOAD_MAX",
    "_BOT_API_READING",
    "ApiError",
    "SentCall",
    "TelegramSandbox",
    "Upload",
]
