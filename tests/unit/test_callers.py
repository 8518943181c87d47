"""Caller numbers become caller keys, one per caller whatever the spelling (SPEC §7)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hotline_kpi.ingest.callers import CallerKeys, normalise

SECRET = b"s3cret-caller-key"


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("+86 138-0013-8000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("13800138000", "13800138000"),
        ("(010) 6552-1234", "01065521234"),
        ("01065521234", "01065521234"),
        ("\t+86 138 0013 8000", "13800138000"),
        ("13800138000 ext", "13800138000"),
        ("12345", "12345"),
        ("+1 (555) 010-9999", "15550109999"),
    ],
)
def test_a_number_normalises_to_its_digits_without_the_country_code(raw: str, digits: str) -> None:
    assert normalise(raw) == digits


@pytest.mark.parametrize(
    "raw",
    ["anonymous", "", "1234", None, "   ", "+86", "0086", "+86 1234", "unknown-12", "１２３４５６"],
)
def test_fewer_than_five_digits_is_no_number(raw: str | None) -> None:
    assert normalise(raw) is None


def test_the_country_code_is_removed_only_at_the_start() -> None:
    assert normalise("138+8600138000") == "1388600138000"
    assert normalise("1380086138000") == "1380086138000"
    assert normalise("86 13800138000") == "8613800138000"  # no + or 00: not a country code
    assert normalise("+8686123456") == "86123456"  # only one code is removed


def test_the_spellings_of_one_mobile_number_give_one_key() -> None:
    keys = CallerKeys(SECRET)
    found = {keys.key(raw) for raw in ("+86 138-0013-8000", "008613800138000", "13800138000")}
    assert len(found) == 1 and None not in found


def test_the_spellings_of_one_landline_number_give_one_key() -> None:
    keys = CallerKeys(SECRET)
    assert keys.key("(010) 6552-1234") == keys.key("01065521234") is not None
    assert keys.key("01065521234") != keys.key("13800138000")


@pytest.mark.parametrize("raw", ["anonymous", "", "1234", None])
def test_no_number_gives_no_key(raw: str | None) -> None:
    assert CallerKeys(SECRET).key(raw) is None


def _hmac_sha256_by_hand(secret: bytes, message: bytes) -> str:
    """RFC 2104 spelled out with hashlib, independent of the hmac module."""
    block = secret.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in block) + inner).hexdigest()


def test_the_key_is_hex_hmac_sha256_of_the_digits() -> None:
    expected = hmac.new(SECRET, b"13800138000", hashlib.sha256).hexdigest()
    assert expected == _hmac_sha256_by_hand(SECRET, b"13800138000")
    assert CallerKeys(SECRET).key("+86 138-0013-8000") == expected
    assert CallerKeys(SECRET).key("(010) 6552-1234") == _hmac_sha256_by_hand(SECRET, b"01065521234")


def test_keys_do_not_depend_on_earlier_calls() -> None:
    keys = CallerKeys(SECRET)
    first = keys.key("13800138000")
    keys.key("01065521234")
    assert keys.key("13800138000") == first


def test_a_different_secret_gives_different_keys() -> None:
    assert CallerKeys(SECRET).key("13800138000") != CallerKeys(b"other").key("13800138000")


def test_the_fingerprint_is_stable_and_differs_between_secrets() -> None:
    fingerprint = CallerKeys(SECRET).fingerprint
    assert fingerprint == CallerKeys(SECRET).fingerprint
    assert fingerprint != CallerKeys(b"other").fingerprint
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    check = hmac.new(SECRET, b"hotline-kpi caller key check", hashlib.sha256).hexdigest()
    assert fingerprint == check[:16]


def test_the_repr_shows_the_fingerprint_not_the_secret() -> None:
    keys = CallerKeys(SECRET)
    shown = repr(keys) + str(keys)
    assert SECRET.decode() not in shown and SECRET.hex() not in shown
    assert keys.fingerprint in shown


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        CallerKeys(b"")
