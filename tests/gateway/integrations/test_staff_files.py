"""Staff files: what a Chatwoot attachment's reference holds, and the bounded download."""

from __future__ import annotations

import time

import httpx
import pytest
import respx

from gateway.integrations.chatwoot.api import ChatwootUnavailable
from gateway.integrations.chatwoot.files import (
    ChatwootFiles,
    FileNotStored,
    FileRefused,
    StaffFile,
    file_name,
    reference,
    size_text,
)
from gateway.integrations.telegram.api import TIMEOUT_SECONDS, upload_timeout
from gateway.integrations.whatsapp.api import media_kind
from gateway.pipeline.resilience import CircuitBreaker

URL = "https://cw.example/rails/active_storage/blobs/redirect/abc"


def test_a_reference_names_the_file_from_its_url() -> None:
    """Chatwoot's `Attachment#file_metadata` carries no name: the blob URL ends with it."""
    attachment = {"file_type": "file", "data_url": f"{URL}/%D0%BF%D1%80%D0%B0%D0%B9%D1%81.pdf"}
    assert reference(attachment) == {
        "url": attachment["data_url"],
        "name": "прайс.pdf",
        "size": None,
        "kind": "file",
        "written": None,
    }
    assert file_name(f"{URL}/", "pdf") == "file.pdf"
    assert file_name("https://cw.example/x/noext", "") == "file"
    assert reference({"file_type": "contact", "data_url": f"{URL}/a.vcf"}) is None
    assert reference({"file_type": "image", "data_url": "/relative/a.jpg"}) is None
    assert (size_text(340 * 1024), size_text(100), size_text(None)) == ("340 KB", "1 KB", "")


@respx.mock
async def test_a_download_is_bounded_and_sends_no_token() -> None:
    files = ChatwootFiles(CircuitBreaker("chatwoot"))
    route = respx.get(f"{URL}/big.pdf").mock(
        return_value=httpx.Response(200, content=b"x" * 2048, headers={"Content-Type": "a/b"})
    )
    ref = {"url": f"{URL}/big.pdf", "name": "big.pdf", "size": None}
    # An older Chatwoot sends no size: the download stops once it is over the limit.
    with pytest.raises(FileRefused, match="over the 1 KB limit"):
        await files.fetch(ref, 1024)
    fetched = await files.fetch(ref, 4096)
    assert (fetched.mime_type, len(fetched.data)) == ("a/b", 2048)
    assert "api_access_token" not in route.calls.last.request.headers
    route.mock(return_value=httpx.Response(429))
    with pytest.raises(ChatwootUnavailable):
        await files.fetch(ref, 4096)
    route.mock(return_value=httpx.Response(200, content=b"%PDF"))
    assert (await files.fetch(ref, 4096)).mime_type == "application/octet-stream"

    # Behind a valid redirect the storage has no file yet: retried while the message is fresh
    # (Active Storage uploads after the commit that sends the webhook), then final.
    disk = "https://storage.example/key/big.pdf"
    route.mock(return_value=httpx.Response(302, headers={"Location": disk}))
    respx.get(disk).mock(return_value=httpx.Response(404, text="NoSuchKey"))
    with pytest.raises(FileNotStored):
        await files.fetch(ref | {"written": time.time() - 5}, 4096)
    with pytest.raises(FileRefused, match="HTTP 404"):
        await files.fetch(ref | {"written": time.time() - 600}, 4096)
    await files.aclose()


def test_whatsapp_takes_each_kind_of_file_within_metas_limits() -> None:
    """Meta, "Supported media types": images are JPEG or PNG of 5 MB at most; a GIF or an
    archive is no type a message takes."""
    assert media_kind(StaffFile("a.png", "image/png", b"x")) == "image"
    assert media_kind(StaffFile("a.ogg", "audio/ogg", b"x")) == "audio"
    assert media_kind(StaffFile("a.pdf", "application/pdf", b"x")) == "document"
    with pytest.raises(FileRefused, match="does not take image/gif"):
        media_kind(StaffFile("a.gif", "image/gif", b"x"))
    with pytest.raises(FileRefused, match="5 MB"):
        media_kind(StaffFile("a.jpg", "image/jpeg", b"x" * (5 * 1024 * 1024 + 1)))


def test_an_upload_is_given_time_for_its_size() -> None:
    """A 50 MB document at about 2 Mbit/s takes over three minutes: cut at the usual 10 s it
    would be uploaded again and again."""
    small, large = upload_timeout(0), upload_timeout(50 * 1024 * 1024)
    assert small.total == TIMEOUT_SECONDS
    assert large.total is not None
    assert large.total >= 200
    assert large.sock_connect == TIMEOUT_SECONDS
