"""Streaming AEAD for media objects: AES-GCM per 1 MiB chunk under the contact's data key.

An object is `MAGIC | len(key_id) | key_id` followed by records `nonce(12) | ciphertext+tag`, each the
encryption of one chunk of at most CHUNK plaintext bytes. Every chunk's associated data binds it to the
object key, its index and whether it is the last one, so chunks cannot be reordered, dropped, moved to
another object or the object truncated at a chunk boundary without the decryption failing.
Neither side ever holds more than a chunk (plus one record of look-ahead when reading): a 100 MB
document is never held whole in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

MAGIC = b"WGM1"
CHUNK = 1024 * 1024
_NONCE = 12
_TAG = 16
RECORD = _NONCE + CHUNK + _TAG


class Corrupt(ValueError):
    """The object is not a waguard media object, or it was altered."""


def _aad(object_key: str, index: int, final: bool) -> bytes:
    return f"{object_key}|{index}|{int(final)}".encode()


def header(key_id: str) -> bytes:
    raw = key_id.encode()
    if len(raw) > 255:
        raise ValueError("key id too long")
    return MAGIC + bytes([len(raw)]) + raw


class Sealer:
    """Feed plaintext in any pieces; get ciphertext records out as chunks fill (then `finish`)."""

    def __init__(self, key: bytes, key_id: str, object_key: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self._object_key = object_key
        self._buf = bytearray()
        self._index = 0
        self._started = False
        self._key_id = key_id

    def _record(self, plain: bytes, final: bool) -> bytes:
        nonce = os.urandom(_NONCE)
        out = nonce + self._aead.encrypt(nonce, plain, _aad(self._object_key, self._index, final))
        self._index += 1
        return out

    def _head(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return header(self._key_id)

    def feed(self, data: bytes) -> bytes:
        """Ciphertext ready so far (a chunk is sealed only once more data follows it: the last chunk
        is sealed by `finish` with the final flag)."""
        self._buf += data
        out = bytearray(self._head())
        while len(self._buf) > CHUNK:
            out += self._record(bytes(self._buf[:CHUNK]), final=False)
            del self._buf[:CHUNK]
        return bytes(out)

    def finish(self) -> bytes:
        out = self._head() + self._record(bytes(self._buf), final=True)
        self._buf.clear()
        return out


def read_key_id(read: Callable[[int], bytes]) -> str:
    head = read(len(MAGIC) + 1)
    if len(head) != len(MAGIC) + 1 or head[: len(MAGIC)] != MAGIC:
        raise Corrupt("not a waguard media object")
    key_id = read(head[-1])
    if len(key_id) != head[-1]:
        raise Corrupt("truncated header")
    return key_id.decode()


def _read_full(read: Callable[[int], bytes], size: int) -> bytes:
    parts = bytearray()
    while len(parts) < size:
        got = read(size - len(parts))
        if not got:
            break
        parts += got
    return bytes(parts)


def _opener(key: bytes, object_key: str) -> Callable[[bytes, int, bool], bytes]:
    """Opens one sealed record of the object (its bytes, index, and whether it is the last); Corrupt when
    it is truncated, altered, out of place, or belongs to another object."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(key)

    def open_one(record: bytes, index: int, final: bool) -> bytes:
        if len(record) < _NONCE + _TAG:
            raise Corrupt("truncated record")
        try:
            return aead.decrypt(record[:_NONCE], record[_NONCE:], _aad(object_key, index, final))
        except InvalidTag as exc:
            raise Corrupt("the object was altered or belongs elsewhere") from exc

    return open_one


def open_records(key: bytes, object_key: str, read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The plaintext chunks of an object whose header was consumed by `read_key_id`."""
    open_one = _opener(key, object_key)
    index = 0
    current = _read_full(read, RECORD)
    while True:
        following = _read_full(read, RECORD) if len(current) == RECORD else b""
        final = not following
        yield open_one(current, index, final)
        if final:
            return
        index += 1
        current = following


def header_length(key_id: str) -> int:
    return len(MAGIC) + 1 + len(key_id.encode())


def records_of(size: int) -> int:
    """How many records an object of `size` plaintext bytes has (an empty object has one, empty)."""
    return max(1, -(-size // CHUNK))


def open_span(key: bytes, object_key: str, ciphertext: bytes, first: int, total: int) -> Iterator[bytes]:
    """The plaintext chunks of the records `first`, `first + 1`, ... held in `ciphertext` (a ranged read
    of the object starting at record `first`); `total` is the object's record count (the last one is
    sealed as final, so a span cannot pass off a truncated object as whole)."""
    open_one = _opener(key, object_key)
    for offset in range(0, len(ciphertext), RECORD):
        index = first + offset // RECORD
        yield open_one(ciphertext[offset : offset + RECORD], index, index == total - 1)
