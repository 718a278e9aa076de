"""Field encryption with per-contact keys: binding, caching, crypto-shredding."""

import pytest

from shared import constants as c
from store import crypto, tables

PK = "a" * 64


def _enc(value: object, pk: str = PK, sk: str = "IN#1", attr: str = "data") -> str:
    return crypto.cipher().encrypt(pk, c.TABLE_MESSAGES, pk, sk, attr, value)


def test_round_trip_and_no_plaintext_at_rest(aws_stack) -> None:
    token = _enc({"text": "Grüße 👋 from +4915112345678"})
    assert token.startswith("v2:") and "Grüße" not in token and "4915112345678" not in token
    assert crypto.cipher().decrypt(PK, c.TABLE_MESSAGES, PK, "IN#1", "data", token) == {
        "text": "Grüße 👋 from +4915112345678"
    }
    stored = aws_stack.items(c.TABLE_KEYS)
    assert {i[c.SK] for i in stored if i[c.PK] == PK} == {crypto.DATA_KEY_SK}
    assert all(int(i[c.TTL_ATTRIBUTE]) > tables.now() for i in stored)


@pytest.mark.parametrize(
    "where",
    [
        (c.TABLE_CONSENT, PK, "IN#1", "data"),
        (c.TABLE_MESSAGES, PK, "IN#2", "data"),
        (c.TABLE_MESSAGES, PK, "IN#1", "wamid"),
    ],
)
def test_ciphertext_is_bound_to_table_item_and_attribute(aws_stack, where) -> None:
    from cryptography.exceptions import InvalidTag

    token = _enc("secret text")
    with pytest.raises(InvalidTag):
        crypto.cipher().decrypt(PK, *where, token)


def test_other_contacts_key_does_not_open(aws_stack) -> None:
    from cryptography.exceptions import InvalidTag

    other = "b" * 64
    _enc("x", pk=other)
    token = _enc("secret")
    with pytest.raises((InvalidTag, crypto.KeyShredded)):  # another key id: not even tried
        crypto.cipher().decrypt(other, c.TABLE_MESSAGES, PK, "IN#1", "data", token)


def test_shredding_makes_every_copy_unreadable_even_after_restore(aws_stack) -> None:
    token = _enc("hello")
    snapshot = [i for i in aws_stack.items(c.TABLE_KEYS) if i[c.SK] == crypto.DATA_KEY_SK]
    assert crypto.cipher().shred(PK) is True
    assert crypto.cipher().decrypt_or_none(PK, c.TABLE_MESSAGES, PK, "IN#1", "data", token) is None
    with pytest.raises(crypto.KeyShredded):
        crypto.cipher().decrypt(PK, c.TABLE_MESSAGES, PK, "IN#1", "data", token)
    # A new cold container (no cache) cannot read it either.
    crypto.reset()
    assert crypto.cipher().decrypt_or_none(PK, c.TABLE_MESSAGES, PK, "IN#1", "data", token) is None
    assert snapshot  # the key existed before erasure; the keys table has no backup to restore it from
    assert crypto.cipher().shred(PK) is False


def test_kms_is_called_a_handful_of_times_per_thousand_messages(aws_stack) -> None:
    cipher = crypto.cipher()
    for n in range(1000):
        pk = f"{n % 50:064d}"
        cipher.encrypt(pk, c.TABLE_MESSAGES, pk, f"IN#{n}", "data", {"text": "t"})
    assert cipher.kms_calls <= 2
    crypto.reset()  # a cold container: one Decrypt of the branch key, then cached
    cold = crypto.cipher()
    for n in range(100):
        pk = f"{n % 50:064d}"
        cold.encrypt(pk, c.TABLE_MESSAGES, pk, f"IN#{n}", "data", {"text": "t"})
    assert cold.kms_calls == 1


def test_key_outlives_the_items_it_protects(aws_stack) -> None:
    _enc("x")
    (key,) = [i for i in aws_stack.items(c.TABLE_KEYS) if i[c.PK] == PK]
    longest = max(v for k, v in crypto.get_settings().retention_days.items() if k != c.CLASS_KEYS)
    assert int(key[c.TTL_ATTRIBUTE]) >= tables.now() + longest * 86400
