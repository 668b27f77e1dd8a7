"""Files staff attach in Chatwoot, fetched when their message is delivered and sent on as what
they are: a photo as a photo, anything else as a document (or, in WhatsApp, audio and video).

The worker only queues a reference (`FETCH_MARKER`: the attachment's `data_url`, name, size and
Chatwoot's `file_type`); the download happens in the outbox's delivery step, so the webhook is
answered at once and a failed download is retried like any failed send.

Chatwoot's `message_created` webhook carries each attachment's `push_event_data`
(`app/models/attachment.rb`, `file_metadata`: `file_type`, `extension`, `data_url`,
`thumb_url`, `file_size`, `width`, `height`; `app/models/message.rb`, `webhook_data`): no file
name and no MIME type. `data_url` is `url_for(file)`, Active Storage's blob redirect URL
(`/rails/active_storage/blobs/redirect/<signed id>/<file name>`, `attachmentable.rb`
`file_url`: "the URL returned does a 301 redirect to the actual file"). It needs no token:
"All Active Storage controllers are publicly accessible by default" (rails/rails,
`activestorage/app/controllers/active_storage/blobs/redirect_controller.rb`); the signed id is
the secret, and the redirect leads to the storage service (the disk service's expiring URL, or
S3 on another host). So the download follows redirects and sends no `api_access_token`: an
HTTP client carries custom headers across a redirect to another host, which would hand the
token to the storage service. The name is the URL's last segment, the type what the storage
service answers.

A file that cannot go (too big for the channel, a type it does not take, gone from Chatwoot,
refused by the messenger's upload) raises `FileRefused`: the delivery sends the client the
text prepared for it (`FALLBACK`) and reports the failure to staff.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from gateway.integrations.chatwoot.api import ChatwootUnavailable
from gateway.pipeline.resilience import CircuitBreaker

log = logging.getLogger("frontdesk.files")

# Marks a staff file inside a queued message: {"url", "name", "size", "kind"}.
FETCH_MARKER = "_fetch"
# The text the client gets instead, should the file not go (in their language).
FALLBACK = "_fallback"
MB = 1024 * 1024
# Chatwoot's file types that hold a file (`Attachment#file_type`; a location, a contact card or
# a fallback holds none).
FILE_KINDS = ("image", "audio", "video", "file")
# The most any channel takes (WhatsApp documents, 100 MB): nothing larger is downloaded.
MAX_BYTES = 100 * MB
# How long after its message a file may still be on its way to the storage: Chatwoot sends the
# webhook when the message is committed, and Active Storage uploads the file after that commit
# (`Message#send_reply` waits 2 s for it: "active storage attaches the file only after commit";
# chatwoot#15540: the blob redirect signs a URL without checking the object, and the storage
# answers 404 until the upload is done). Until then a 404 behind the redirect is retried.
STORE_WAIT_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class StaffFile:
    name: str
    mime_type: str
    data: bytes


class FileRefused(Exception):
    """The file cannot reach the client (retrying cannot help): the text goes instead."""


class FileNotStored(Exception):
    """The storage has no file yet behind a valid blob URL: tried again later."""


def reference(attachment: dict[str, Any], written: float | None = None) -> dict[str, Any] | None:
    """What the delivery needs to fetch one attachment of a `message_created` webhook (written
    at `written`, unix seconds); None for what has no file (a location, a contact card)."""
    url = str(attachment.get("data_url") or "")
    kind = str(attachment.get("file_type") or "file")
    if not url.startswith(("http://", "https://")) or kind not in FILE_KINDS:
        return None
    size = attachment.get("file_size")  # Chatwoot 3.x+; older versions leave it out
    return {
        "url": url,
        "name": file_name(url, str(attachment.get("extension") or "")),
        "size": size if isinstance(size, int) and size >= 0 else None,
        "kind": kind,
        "written": written,
    }


def file_name(url: str, extension: str) -> str:
    """The blob's file name: the last segment of its redirect URL."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).strip()
    if name and "." in name:
        return name[:200]
    return f"file.{extension}" if extension else "file"


def size_text(size: int | None) -> str:
    """A file's size as people read it: "12 MB", "340 KB"."""
    if size is None:
        return ""
    if size >= MB:
        return f"{size / MB:.0f} MB"
    return f"{max(1, round(size / 1024))} KB"


class ChatwootFiles:
    """Downloads attachments from Chatwoot, bounded in time and size, behind Chatwoot's
    breaker (its failures are Chatwoot's: `gateway.integrations.chatwoot.api.is_failure`)."""

    def __init__(
        self,
        breaker: CircuitBreaker,
        *,
        timeout: float = 30.0,
        max_bytes: int = MAX_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.breaker = breaker
        self.max_bytes = max_bytes
        # No api_access_token (see the module's notes): nothing but the signed URL is needed.
        self._http = httpx.AsyncClient(
            timeout=timeout, follow_redirects=True, max_redirects=3, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(self, ref: dict[str, Any], limit: int) -> StaffFile:
        """The file's bytes, if it is at most `limit` bytes; FileRefused if it is larger or gone,
        ChatwootUnavailable (or a transport error) if trying again later may help."""
        name = str(ref.get("name") or "file")
        known = ref.get("size")
        if isinstance(known, int) and known > limit:
            raise FileRefused(f"the file is {size_text(known)}, over the {size_text(limit)} limit")
        written = ref.get("written")
        fresh = isinstance(written, int | float) and time.time() - written < STORE_WAIT_SECONDS
        return await self.breaker.call(
            lambda: self._download(str(ref["url"]), name, limit, fresh=fresh)
        )

    async def _download(self, url: str, name: str, limit: int, *, fresh: bool) -> StaffFile:
        async with self._http.stream("GET", url) as response:
            if response.status_code >= 500 or response.status_code == 429:
                # Down or throttling: counted by Chatwoot's breaker, and the send is retried.
                raise ChatwootUnavailable(f"HTTP {response.status_code} downloading a staff file")
            if response.status_code == 404 and response.history and fresh:
                # The blob exists (it redirected) but its upload to the storage is not done.
                raise FileNotStored("the file is not in the storage yet")
            if not response.is_success:
                # 404: deleted in Chatwoot, or a signed URL no longer valid; retrying cannot help.
                raise FileRefused(f"the file could not be downloaded (HTTP {response.status_code})")
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > limit:
                    raise FileRefused(f"the file is over the {size_text(limit)} limit")
                chunks.append(chunk)
            mime_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return StaffFile(name, mime_type or "application/octet-stream", b"".join(chunks))


def fallback_of(params: dict[str, Any]) -> str:
    return str(params.get(FALLBACK) or "")
