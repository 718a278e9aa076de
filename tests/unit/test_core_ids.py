"""Contact references, pseudonyms and the log scrubber."""

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import ids
from shared.observability import PersonalDataFilter, scrub


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("4915112345678", "4915112345678"),
        ("+4915112345678", "4915112345678"),
        ("%2B4915112345678", "4915112345678"),
        (" 4915112345678 ", "4915112345678"),
        ("US.13491208655302741918", "US.13491208655302741918"),
        ("US.ENT.11815799212886844830", "US.ENT.11815799212886844830"),
        ("US.13491208655302741918".replace(".", "%2E"), "US.13491208655302741918"),
    ],
)
def test_normalize_accepts_wa_ids_and_user_ids(raw: str, expected: str) -> None:
    assert ids.normalize_contact(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "+", "12345", "+49 151 1234", "abc", "49151-123456", "us.123456789", "../etc"]
)
def test_normalize_refuses_everything_else(raw: str) -> None:
    with pytest.raises(ids.InvalidContact):
        ids.normalize_contact(raw)


def test_pseudonyms_are_keyed_and_separated_by_kind() -> None:
    a = ids.contact_pseudonym("k1", "4915112345678")
    assert a == ids.contact_pseudonym("k1", "4915112345678")
    assert a != ids.contact_pseudonym("k2", "4915112345678")
    assert a != ids.wamid_pseudonym("k1", "4915112345678")
    assert "4915112345678" not in a and len(a) == 64


@given(st.from_regex(r"\+?[1-9]\d{7,14}", fullmatch=True))
def test_scrub_masks_every_phone_number(phone: str) -> None:
    out = scrub(f"sending to {phone} now")
    assert phone.lstrip("+") not in out


def test_scrub_masks_user_ids_and_keeps_pseudonyms() -> None:
    pseud = ids.contact_pseudonym("k", "4915112345678")
    out = scrub(f"user US.13491208655302741918 pseudonym {pseud[:12]}")
    assert "13491208655302741918" not in out
    assert pseud[:12] in out


def test_filter_scrubs_message_and_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", ("4915112345678",), None)
    PersonalDataFilter().filter(record)
    assert "4915112345678" not in record.getMessage()


_B32 = "abcdefghijklmnopqrstuvwxyz234567"


@given(st.binary(min_size=32, max_size=32))
def test_a_reference_has_exactly_one_spelling(raw: bytes) -> None:
    """52 base32 characters carry 4 unused bits: the variants that set them name the same pseudonym, and
    every one but the canonical spelling is refused (one person, one reference string)."""
    ref = ids.reference_of(raw.hex())
    assert ids.pseudonym_of(ref) == raw.hex()
    assert ids.normalize_contact(ref) == ref
    accepted = []
    for ch in _B32:
        variant = ref[:-1] + ch
        if ids.is_reference(variant):
            accepted.append(variant)
            assert ids.reference_of(ids.pseudonym_of(variant)) == variant
        else:
            with pytest.raises(ids.InvalidContact):
                ids.normalize_contact(variant)
            with pytest.raises(ids.InvalidContact):
                ids.pseudonym_of(variant)
    # The last character holds one bit of the pseudonym: two spellings are valid, each another person.
    assert len(accepted) == 2 and ref in accepted
    assert len({ids.pseudonym_of(v) for v in accepted}) == 2


def test_an_upper_case_reference_is_not_a_reference() -> None:
    ref = ids.reference_of("ab" * 32)
    with pytest.raises(ids.InvalidContact):
        ids.normalize_contact(ref.upper())
