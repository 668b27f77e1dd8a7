"""What a client types, compared the way a person would read it."""

from __future__ import annotations

import re


def plain(text: str) -> str:
    """Words only, in one case: emoji, punctuation and extra spaces do not matter."""
    return " ".join(re.sub(r"[^\w\s]", " ", text).casefold().split())
