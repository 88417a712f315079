"""Field-level encryption of personal data (names, phone numbers, addresses, ID numbers).

:class:`PiiCipher` seals a string with AES-256-GCM (``cryptography``'s AEAD, an
authenticated cipher: a flipped bit or a value moved to another column fails to
decrypt).  A sealed value is ``<key id>:`` + 12-byte nonce + ciphertext-and-tag, so
keys can rotate: new values use the current key, old ones still open with the key
named in their prefix, and :meth:`PiiCipher.needs_rotation` finds them for
re-encryption.  The column name is bound in as associated data, so a name cannot be
passed off as a phone number.

Blind indexes (:meth:`PiiCipher.blind_index`) are keyed HMAC-SHA256 of the normalised
value with a separate key, for the few columns that must be looked up by value
(phone numbers, ID numbers) without decrypting the whole table.

Keys come from settings (``pii_keys``: ``"k2:<base64>,k1:<base64>"``, current first;
``pii_index_key``), never from the database.  ``carecircle privacy new-key`` makes one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from carecircle.common.errors import CareCircleError, ConfigError

_KEY_ID = re.compile(r"^[a-z0-9]{1,8}$")
_NONCE_BYTES = 12


class DecryptError(CareCircleError):
    """A sealed value cannot be opened: unknown key id, wrong key or tampered data."""


def new_key() -> str:
    """A fresh random 256-bit key, URL-safe base64 (for ``pii_keys`` / ``pii_index_key``)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _decode_key(text: str, what: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError) as err:
        raise ConfigError(f"{what} is not URL-safe base64") from err
    if len(raw) != 32:
        raise ConfigError(f"{what} must be 32 bytes (256 bits), got {len(raw)}")
    return raw


def parse_keys(spec: str) -> tuple[str, dict[str, bytes]]:
    """Parse ``"k2:<b64>,k1:<b64>"`` into (current key id, {key id: key})."""
    keys: dict[str, bytes] = {}
    current = ""
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        if not sep or not _KEY_ID.match(kid):
            raise ConfigError(
                "pii_keys must look like 'k2:<base64 key>,k1:<base64 key>' "
                "(key ids: 1-8 lowercase letters or digits; current key first)"
            )
        if kid in keys:
            raise ConfigError(f"pii_keys names key id {kid!r} twice")
        keys[kid] = _decode_key(b64, f"pii_keys key {kid!r}")
        current = current or kid
    if not keys:
        raise ConfigError("pii_keys is empty: generate one with `carecircle privacy new-key`")
    return current, keys


def normalise(value: str) -> str:
    """The form blind indexes are computed on: NFKC, no spaces, dashes or dots, lower case."""
    text = unicodedata.normalize("NFKC", value)
    return re.sub(r"[\s\-.()]", "", text).lower()


class PiiCipher:
    """Seal and open personal data; see the module docstring for the format."""

    def __init__(self, keys: Mapping[str, bytes], current: str, index_key: bytes) -> None:
        if current not in keys:
            raise ConfigError(f"current key id {current!r} is not among the keys")
        for kid, key in keys.items():
            if not _KEY_ID.match(kid) or len(key) != 32:
                raise ConfigError(f"key {kid!r}: ids are 1-8 [a-z0-9], keys 32 bytes")
        if len(index_key) != 32:
            raise ConfigError("the blind-index key must be 32 bytes")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self.current = current
        self._index_key = index_key

    @classmethod
    def from_settings(cls, keys_spec: str, index_key: str) -> PiiCipher:
        current, keys = parse_keys(keys_spec)
        return cls(keys, current, _decode_key(index_key, "pii_index_key"))

    def encrypt(self, value: str, field: str = "") -> bytes:
        """Seal ``value`` with the current key; ``field`` (e.g. ``"residents.display_name"``)
        is authenticated, so the result opens only for the same field."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self.current].encrypt(nonce, value.encode("utf-8"), field.encode())
        return self.current.encode("ascii") + b":" + nonce + sealed

    def key_id(self, token: bytes) -> str:
        kid, sep, _ = bytes(token).partition(b":")
        if not sep:
            raise DecryptError("sealed value has no key id prefix")
        return kid.decode("ascii", errors="replace")

    def decrypt(self, token: bytes, field: str = "") -> str:
        """Open a value sealed by :meth:`encrypt` with any known key."""
        token = bytes(token)
        kid = self.key_id(token)
        aead = self._aead.get(kid)
        if aead is None:
            raise DecryptError(f"sealed with unknown key id {kid!r}; add it to pii_keys")
        body = token[len(kid) + 1 :]
        if len(body) < _NONCE_BYTES + 16:
            raise DecryptError("sealed value is truncated")
        try:
            plain = aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], field.encode())
        except InvalidTag as err:
            raise DecryptError(
                f"sealed value does not open with key {kid!r} for field {field!r} "
                "(tampered, or moved from another field)"
            ) from err
        return plain.decode("utf-8")

    def needs_rotation(self, token: bytes) -> bool:
        """True when ``token`` was sealed with a key other than the current one."""
        return self.key_id(token) != self.current

    def blind_index(self, value: str, field: str = "") -> bytes:
        """Keyed HMAC-SHA256 of the normalised value: equal inputs, equal index."""
        message = field.encode() + b"\x00" + normalise(value).encode("utf-8")
        return hmac.new(self._index_key, message, hashlib.sha256).digest()
