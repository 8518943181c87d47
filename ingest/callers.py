"""Caller numbers to caller keys (SPEC §7): a number is never kept in clear, only its key.

Pure: the secret comes in as bytes (``hotline_kpi.config.caller_key_secret`` reads it), and
nothing here reads the environment, logs, or remembers a number beyond the call that gives it.

Normalising (SPEC §7): remove spaces (any whitespace, so a tab or a full-width space does not hide
the country code), ``-``, ``(`` and ``)``; remove ``+86`` or ``0086`` when the result starts with
it (only at the start: ``138+86...`` keeps its digits); then keep the ASCII digits ``0``-``9`` and
drop every other character, so ``13800138000 ext`` is ``13800138000`` and a letter between digits
joins them. Fewer than 5 digits (``anonymous``, ``""``, ``1234``) is no number: no key. Digits of
other scripts (full-width ``１``) are dropped like letters: a telephony source that sent them
would be sending text, not a number.
"""

from __future__ import annotations

import hashlib
import hmac

MIN_DIGITS = 5

# What a switch or a person puts between digits; removed before the country code is looked for.
_SEPARATORS = str.maketrans(dict.fromkeys(" \t\r\n\f\v\u00a0\u3000-()"))
_COUNTRY_CODES = ("+86", "0086")
_DIGITS = frozenset("0123456789")
# The message whose MAC identifies a secret; it has no digits, so no caller's key equals it.
_FINGERPRINT_MESSAGE = b"hotline-kpi caller key check"
FINGERPRINT_HEX_DIGITS = 16


def normalise(raw: str | None) -> str | None:
    """The digits that identify the caller of ``raw`` (SPEC §7), or None when it has fewer than 5
    (``anonymous``, an empty string, None). See the module docstring for the rules."""
    if raw is None:
        return None
    text = raw.translate(_SEPARATORS)
    for code in _COUNTRY_CODES:
        if text.startswith(code):
            text = text[len(code) :]
            break
    # The common case (digits only) without a per-character loop.
    if not (text.isascii() and text.isdigit()):
        text = "".join(char for char in text if char in _DIGITS)
    return text if len(text) >= MIN_DIGITS else None


class CallerKeys:
    """Caller keys under one secret: hex HMAC-SHA256 of the normalised digits (SPEC §7).

    The secret is not kept: only HMAC's keyed state, copied for each number. ``repr`` shows the
    fingerprint, never the secret.
    """

    __slots__ = ("_fingerprint", "_keyed")

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("caller key secret is empty")
        # Keying HMAC hashes the padded secret into the inner and outer states once; each key
        # then costs a copy of those states and the digest of one short message.
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        check = self._keyed.copy()
        check.update(_FINGERPRINT_MESSAGE)
        self._fingerprint = check.hexdigest()[:FINGERPRINT_HEX_DIGITS]

    def key(self, raw: str | None) -> str | None:
        """The caller key of the number ``raw`` (64 hex digits), or None when it has no number."""
        digits = normalise(raw)
        if digits is None:
            return None
        mac = self._keyed.copy()
        mac.update(digits.encode("ascii"))
        return mac.hexdigest()

    @property
    def fingerprint(self) -> str:
        """A short identifier of the secret (16 hex digits of its MAC over a fixed message):
        stored beside the keys, it shows that the secret changed between runs (old keys would
        then never match new ones) without revealing anything about the secret."""
        return self._fingerprint

    def __repr__(self) -> str:
        return f"CallerKeys(fingerprint={self._fingerprint!r})"
