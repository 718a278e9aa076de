"""One canonical identity per person (issue 12): contact normalization over arbitrary Unicode."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared import ids

# 491511234567 in fullwidth and in Arabic-Indic digits (Python's `\d` accepts both).
FULLWIDTH = "".join(chr(0xFF10 + int(d)) for d in "491511234567")
ARABIC_INDIC = "".join(chr(0x0660 + int(d)) for d in "491511234567")


ASCII_DIGITS = "0123456789"
# Digits of other scripts that Python's `\d` and `str.isdigit` accept.
FOREIGN_DIGITS = {
    "fullwidth": "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",
    "arabic-indic": "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",
    "devanagari": "\u0966\u0967\u0968\u0969\u096a\u096b\u096c\u096d\u096e\u096f",
    "superscript": "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079",
}


def _is_canonical(value: str) -> bool:
    if value.isascii() and value.isdigit():
        return 7 <= len(value) <= 15
    head, _, tail = value.rpartition(".")
    return value.isascii() and value[:2].isupper() and bool(head) and tail.isalnum() and 6 <= len(tail) <= 64


@given(st.text())
@example(FULLWIDTH)
@example(ARABIC_INDIC)
@example("4915112345678\n")
@example("1" * 16)
def test_every_accepted_value_is_canonical_ascii(raw: str) -> None:
    try:
        value = ids.normalize_contact(raw)
    except ids.InvalidContact:
        return
    assert value.isascii(), value
    assert _is_canonical(value), value
    assert ids.normalize_contact(value) == value  # canonical is a fixed point


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_encoded_arbitrary_text_never_escapes_as_another_error(raw: str) -> None:
    for spelling in (raw, urllib.parse.quote(raw, safe=""), urllib.parse.quote(raw, safe="+")):
        try:
            ids.normalize_contact(spelling)
        except ids.InvalidContact:
            pass


numbers = st.text(alphabet=ASCII_DIGITS, min_size=7, max_size=15)


@given(numbers)
def test_every_spelling_of_one_number_is_one_identity(number: str) -> None:
    spellings = [
        number,
        "+" + number,
        urllib.parse.quote("+" + number, safe=""),  # %2B4915...
        urllib.parse.quote(number, safe=""),
        " " + number + " ",
        "%2b" + number,
    ]
    assert {ids.normalize_contact(s) for s in spellings} == {number}


@given(numbers, st.sampled_from(sorted(FOREIGN_DIGITS)), st.data())
def test_other_scripts_digits_are_refused(number: str, script: str, data: st.DataObject) -> None:
    digits = FOREIGN_DIGITS[script]
    i = data.draw(st.integers(0, len(number) - 1))
    mixed = number[:i] + digits[int(number[i])] + number[i + 1 :]
    for spelling in (mixed, "+" + mixed, urllib.parse.quote(mixed, safe="")):
        with pytest.raises(ids.InvalidContact):
            ids.normalize_contact(spelling)


@given(st.text(alphabet=ASCII_DIGITS, min_size=16, max_size=40) | st.text(alphabet=ASCII_DIGITS, max_size=6))
def test_digit_counts_outside_e164_are_refused(digits: str) -> None:
    with pytest.raises(ids.InvalidContact):
        ids.normalize_contact(digits)
    with pytest.raises(ids.InvalidContact):
        ids.normalize_contact("+" + digits)


@pytest.mark.parametrize(
    "raw",
    [
        "49-151-7777777",
        "<b>4915112345678</b>",
        "4915112345678\n4915112345678",
        "49151\n12345678",
        "5" * 5000,
        "++4915112345678",
        "4915112345678+",
        "%FF4915112345678",
        "US.1349120865530274191\uff18",
    ],
)
def test_malformed_contacts_are_refused(raw: str) -> None:
    with pytest.raises(ids.InvalidContact):
        ids.normalize_contact(raw)


def test_is_phone_is_ascii_only() -> None:
    assert ids.is_phone("4915112345678")
    assert not ids.is_phone(FULLWIDTH)
    assert not ids.is_phone("US.13491208655302741918")
