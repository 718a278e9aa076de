"""Field-level envelope encryption with per-contact data keys (crypto-shredding).

A hierarchy like the AWS Database Encryption SDK's hierarchical keyring, built on AEAD from
`cryptography` (which the Powertools layer carries):

- a *branch key* comes from KMS `GenerateDataKey` under the stack's CMK; only its KMS ciphertext is
  stored (keys table, `BRANCH` / `<created>#<id>`), and a container keeps the plaintext for 15 minutes,
  so KMS is called a handful of times per thousand messages, not once per message;
- each contact has its own random 256-bit *data key*, stored wrapped by a branch key (AES-GCM, the
  contact's pseudonym as associated data) at keys table `<pseudonym>` / `DK`;
- each personal attribute is AES-GCM encrypted under the contact's data key, with associated data
  binding it to its table, item key and attribute: a ciphertext copied elsewhere does not decrypt.

Erasure deletes the contact's `DK` item first. The keys table has no point-in-time recovery or backup,
so no restore of any other table brings anything readable back.

Life after erasure: every data key has a random `key_id`, stored clear on its `DK` item and written into
each ciphertext (`v2:<key_id>:...`). A container caches keys, so after an erasure served elsewhere it may
still hold the shredded key; two rules keep that from losing anything:
- writes (store.sealed) are conditioned, in the same transaction, on the `DK` item still holding the
  `key_id` they sealed under: a stale key makes the write fail, the key is read again (a new one is
  created after an erasure) and the write is sealed anew;
- reads compare the ciphertext's `key_id` with the cached key's and read the keys table again on a
  mismatch, so a newer key is picked up at once and a shredded one is never used for data written later.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared import constants as c
from shared.settings import get_settings, require_env
from store import tables

PREFIX = "v2:"
LEGACY_PREFIX = "v1:"  # before key ids: decrypts with the current key
BRANCH_PK = "BRANCH"
DATA_KEY_SK = "DK"
KEY_ID = "key_id"
BRANCH_ROTATION_SECONDS = 30 * 86400
BRANCH_CACHE_SECONDS = 15 * 60
DATA_KEY_CACHE_SECONDS = 60
DATA_KEY_CACHE_SIZE = 2048
_NONCE = 12


class KeyShredded(LookupError):
    """The contact's data key no longer exists: its data is unreadable by design."""


@dataclass
class _Branch:
    branch_id: str
    key: bytes
    created_at: int
    loaded_at: float


@dataclass
class _DataKey:
    key: bytes
    expires_at: int
    loaded_at: float
    key_id: str


@dataclass(frozen=True)
class WriteKey:
    """The key a write seals under: the guard of that write checks the keys table still holds `key_id`."""

    chash: str
    key_id: str
    key: bytes


def _aad(*parts: str) -> bytes:
    return "|".join(parts).encode()


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], aad)


class FieldCipher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._branches: dict[str, _Branch] = {}
        self._active: _Branch | None = None
        self._keys: OrderedDict[str, _DataKey] = OrderedDict()
        self.kms_calls = 0

    # ---- KMS and branch keys -------------------------------------------------------------------
    @staticmethod
    @cache
    def _kms() -> Any:
        import boto3

        return boto3.client("kms")

    def _context(self, branch_id: str) -> dict[str, str]:
        return {"waguard": "branch", "branch_id": branch_id}

    def _create_branch(self) -> _Branch:
        created = tables.now()
        branch_id = f"{created:012d}#{secrets.token_hex(8)}"
        self.kms_calls += 1
        out = self._kms().generate_data_key(
            KeyId=require_env(c.ENV_DATA_KEY_ARN),
            KeySpec="AES_256",
            EncryptionContext=self._context(branch_id),
        )
        keys_days = get_settings().retention_days[c.CLASS_KEYS]
        item = {
            c.PK: BRANCH_PK,
            c.SK: branch_id,
            "edk": out["CiphertextBlob"],
            "created_at": created,
            # A branch wraps new data keys for BRANCH_ROTATION_SECONDS; the keys it wrapped live at most
            # keys-retention after that, so the branch outlives every key it wrapped.
            c.TTL_ATTRIBUTE: created + BRANCH_ROTATION_SECONDS + keys_days * 86400 + 86400,
        }
        tables.table(c.TABLE_KEYS).put_item(Item=item)
        return _Branch(branch_id, out["Plaintext"], created, time.monotonic())

    def _load_branch(self, branch_id: str) -> _Branch:
        cached = self._branches.get(branch_id)
        if cached and time.monotonic() - cached.loaded_at < BRANCH_CACHE_SECONDS:
            return cached
        item = tables.get_live(c.TABLE_KEYS, BRANCH_PK, branch_id)
        if item is None:
            raise KeyShredded("branch key expired")
        self.kms_calls += 1
        plain = self._kms().decrypt(
            CiphertextBlob=bytes(item["edk"]),
            KeyId=require_env(c.ENV_DATA_KEY_ARN),
            EncryptionContext=self._context(branch_id),
        )["Plaintext"]
        branch = _Branch(branch_id, plain, int(item["created_at"]), time.monotonic())
        self._branches[branch_id] = branch
        return branch

    def _active_branch(self) -> _Branch:
        active = self._active
        if (
            active
            and time.monotonic() - active.loaded_at < BRANCH_CACHE_SECONDS
            and tables.now() - active.created_at < BRANCH_ROTATION_SECONDS
        ):
            return active
        from boto3.dynamodb.conditions import Key

        newest = next(
            tables.query_live(c.TABLE_KEYS, Key(c.PK).eq(BRANCH_PK), ScanIndexForward=False, Limit=5), None
        )
        if newest and tables.now() - int(newest["created_at"]) < BRANCH_ROTATION_SECONDS:
            branch = self._load_branch(str(newest[c.SK]))
        else:
            branch = self._create_branch()
            self._branches[branch.branch_id] = branch
        self._active = branch
        return branch

    # ---- per-contact data keys -----------------------------------------------------------------
    def _remember(self, chash: str, key: _DataKey) -> _DataKey:
        self._keys[chash] = key
        self._keys.move_to_end(chash)
        while len(self._keys) > DATA_KEY_CACHE_SIZE:
            self._keys.popitem(last=False)
        return key

    def holds(self, chash: str) -> bool:
        """Whether this container holds a fresh data key of `chash` (a write needs no key read or made)."""
        return self._cached(chash) is not None

    def _cached(self, chash: str) -> _DataKey | None:
        hit = self._keys.get(chash)
        if hit and time.monotonic() - hit.loaded_at < DATA_KEY_CACHE_SECONDS:
            return hit
        return None

    def _read_key(self, chash: str) -> _DataKey | None:
        item = tables.get_live(c.TABLE_KEYS, chash, DATA_KEY_SK)
        if item is None:
            return None
        branch = self._load_branch(str(item["branch_id"]))
        key = _open(branch.key, bytes(item["wrapped"]), _aad(chash))
        return _DataKey(key, int(item[c.TTL_ATTRIBUTE]), time.monotonic(), str(item.get(KEY_ID, "")))

    def adopt(self, chash: str, item: dict[str, Any] | None) -> None:
        """Take the contact's key item as a batched read just found it (`_read_key` without the read):
        cached when live, the cache dropped when there is none (shredded)."""
        with self._lock:
            if not tables.is_live(item):
                self._keys.pop(chash, None)
                return
            assert item is not None
            branch = self._load_branch(str(item["branch_id"]))
            key = _open(branch.key, bytes(item["wrapped"]), _aad(chash))
            data_key = _DataKey(key, int(item[c.TTL_ATTRIBUTE]), time.monotonic(), str(item.get(KEY_ID, "")))
            self._remember(chash, data_key)

    def _write_key(self, chash: str, key: bytes, key_id: str) -> _DataKey:
        """Re-wrap the stored key under the active branch with a later TTL, only while it is still the
        contact's key (`key_id` unchanged: never resurrect a key erased meanwhile)."""
        branch = self._active_branch()
        expires = tables.expires_at(c.CLASS_KEYS)
        tables.table(c.TABLE_KEYS).put_item(
            Item={
                c.PK: chash,
                c.SK: DATA_KEY_SK,
                "wrapped": _seal(branch.key, key, _aad(chash)),
                "branch_id": branch.branch_id,
                "created_at": tables.now(),
                KEY_ID: key_id,
                c.TTL_ATTRIBUTE: expires,
            },
            ConditionExpression="#k = :k",
            ExpressionAttributeNames={"#k": KEY_ID},
            ExpressionAttributeValues={":k": key_id},
        )
        return _DataKey(key, expires, time.monotonic(), key_id)

    def _create_or_read_key(self, chash: str) -> _DataKey:
        """The contact's data key in one UpdateItem: a new random key when none exists, else the stored
        one (`if_not_exists` keeps whichever writer came first, and the answer says which)."""
        branch = self._active_branch()
        got = tables.table(c.TABLE_KEYS).update_item(
            Key={c.PK: chash, c.SK: DATA_KEY_SK},
            UpdateExpression=(
                "SET #w = if_not_exists(#w, :w), #b = if_not_exists(#b, :b), "
                "#c = if_not_exists(#c, :c), #e = if_not_exists(#e, :e), #k = if_not_exists(#k, :k)"
            ),
            ExpressionAttributeNames={
                "#w": "wrapped",
                "#b": "branch_id",
                "#c": "created_at",
                "#e": c.TTL_ATTRIBUTE,
                "#k": KEY_ID,
            },
            ExpressionAttributeValues={
                ":w": _seal(branch.key, os.urandom(32), _aad(chash)),
                ":b": branch.branch_id,
                ":c": tables.now(),
                ":e": tables.expires_at(c.CLASS_KEYS),
                ":k": secrets.token_hex(8),
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        if not tables.is_live(got):  # an expired key TTL has not deleted yet: its data is gone; start anew
            tables.table(c.TABLE_KEYS).delete_item(
                Key={c.PK: chash, c.SK: DATA_KEY_SK},
                ConditionExpression="#k = :k",
                ExpressionAttributeNames={"#k": KEY_ID},
                ExpressionAttributeValues={":k": got[KEY_ID]},
            )
            return self._create_or_read_key(chash)
        stored = self._load_branch(str(got["branch_id"]))
        key = _open(stored.key, bytes(got["wrapped"]), _aad(chash))
        return _DataKey(key, int(got[c.TTL_ATTRIBUTE]), time.monotonic(), str(got[KEY_ID]))

    def _key_for_write(self, chash: str) -> _DataKey:
        """The contact's data key, created on first use and kept alive longer than any item it protects.

        A cached key may have been shredded by an erasure elsewhere: the write that uses it is guarded
        (store.sealed), so a stale key costs a retry, never data.
        """
        from botocore.exceptions import ClientError

        with self._lock:
            hit = self._cached(chash) or self._create_or_read_key(chash)
            # Items written now expire at most max-retention from now; the key must outlive them.
            if hit.expires_at < tables.expires_at(c.CLASS_KEYS) - 86400:
                try:  # re-wrap under the active branch; never resurrect a key erased meanwhile
                    hit = self._write_key(chash, hit.key, hit.key_id)
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                        raise
                    hit = self._create_or_read_key(chash)  # erased meanwhile: a new key, a new life
            return self._remember(chash, hit)

    def _key_for_read(self, chash: str, key_id: str | None = None) -> bytes:
        """The contact's key; when the ciphertext names another key than the cached one, read again."""
        with self._lock:
            hit = self._cached(chash)
            if hit is None or (key_id is not None and hit.key_id != key_id):
                hit = self._read_key(chash)
            if hit is None:
                self._keys.pop(chash, None)
                raise KeyShredded("no data key for this contact")
            self._remember(chash, hit)
            if key_id is not None and hit.key_id != key_id:
                raise KeyShredded("the data was sealed under a key that no longer exists")
            return hit.key

    # ---- public API ----------------------------------------------------------------------------
    def write_key(self, chash: str) -> WriteKey:
        """The key a guarded write seals under (store.sealed checks it is still current when writing)."""
        hit = self._key_for_write(chash)
        return WriteKey(chash, hit.key_id, hit.key)

    def read_key(self, chash: str, key_id: str) -> bytes:
        """The contact's key `key_id` (media objects name the key they were sealed under); raises
        KeyShredded when it no longer exists."""
        return self._key_for_read(chash, key_id)

    @staticmethod
    def seal(wkey: WriteKey, table: str, pk: str, sk: str, attr: str, value: Any) -> str:
        """Encrypt a JSON-serializable value for one attribute of one item under `wkey`."""
        plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        blob = _seal(wkey.key, plaintext, _aad(table, pk, sk, attr))
        return f"{PREFIX}{wkey.key_id}:" + base64.urlsafe_b64encode(blob).decode()

    def encrypt(self, chash: str, table: str, pk: str, sk: str, attr: str, value: Any) -> str:
        """Encrypt under the contact's current key, unguarded: for values that are not written to a table
        (writes go through store.sealed, which conditions them on the key)."""
        return self.seal(self.write_key(chash), table, pk, sk, attr, value)

    def forget_key(self, chash: str, key_id: str) -> None:
        """Drop the cached key of `chash` when it is `key_id` (a guarded write found it stale)."""
        with self._lock:
            hit = self._keys.get(chash)
            if hit is not None and hit.key_id == key_id:
                self._keys.pop(chash, None)

    def decrypt(self, chash: str, table: str, pk: str, sk: str, attr: str, token: str) -> Any:
        """The value, or raise KeyShredded when the key it was sealed under is gone."""
        if not isinstance(token, str):
            raise ValueError("not a waguard ciphertext")
        if token.startswith(PREFIX):
            key_id, sep, body = token[len(PREFIX) :].partition(":")
            if not sep:
                raise ValueError("not a waguard ciphertext")
            key = self._key_for_read(chash, key_id)
        elif token.startswith(LEGACY_PREFIX):
            key, body = self._key_for_read(chash), token[len(LEGACY_PREFIX) :]
            return self._open_legacy(key, body, _aad(table, pk, sk, attr))
        else:
            raise ValueError("not a waguard ciphertext")
        blob = base64.urlsafe_b64decode(body)
        return json.loads(_open(key, blob, _aad(table, pk, sk, attr)))

    @staticmethod
    def _open_legacy(key: bytes, body: str, aad: bytes) -> Any:
        """A `v1:` value names no key: one that does not open under the contact's current key was sealed
        under a key erased since (a new life's key is another), so it reads as shredded."""
        from cryptography.exceptions import InvalidTag

        try:
            return json.loads(_open(key, base64.urlsafe_b64decode(body), aad))
        except InvalidTag as exc:
            raise KeyShredded("the data was sealed under a key that no longer exists") from exc

    def decrypt_or_none(self, chash: str, table: str, pk: str, sk: str, attr: str, token: str) -> Any:
        try:
            return self.decrypt(chash, table, pk, sk, attr, token)
        except KeyShredded:
            return None

    def evict(self, chash: str) -> None:
        """Forget this container's cached data key of one contact: its next use reads the keys table.

        Data-subject requests call this first: an erasure served by another container shreds the key
        there, while this one's cache would otherwise keep decrypting for up to DATA_KEY_CACHE_SECONDS.
        """
        with self._lock:
            self._keys.pop(chash, None)

    def shred(self, chash: str) -> bool:
        """Delete the contact's data key (first step of erasure). True when a key existed."""
        with self._lock:
            self._keys.pop(chash, None)
            out = tables.table(c.TABLE_KEYS).delete_item(
                Key={c.PK: chash, c.SK: DATA_KEY_SK}, ReturnValues="ALL_OLD"
            )
            return "Attributes" in out

    def forget(self) -> None:
        """Drop every cached plaintext key (tests; a container does this by ending)."""
        with self._lock:
            self._keys.clear()
            self._branches.clear()
            self._active = None


_cipher: FieldCipher | None = None


def cipher() -> FieldCipher:
    global _cipher  # noqa: PLW0603 - one per container, created on first use
    if _cipher is None:
        _cipher = FieldCipher()
    return _cipher


def reset() -> None:
    global _cipher  # noqa: PLW0603
    _cipher = None
    FieldCipher._kms.cache_clear()
