"""PiiCipher: authenticated field-level encryption with key ids, and blind indexes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecircle.common.errors import ConfigError
from carecircle.platform.privacy.crypto import DecryptError, PiiCipher, new_key, parse_keys

K1, K2, INDEX = new_key(), new_key(), new_key()


def cipher(spec: str = f"k1:{K1}") -> PiiCipher:
    return PiiCipher.from_settings(spec, INDEX)


@given(st.text(max_size=200))
def test_round_trip(value: str) -> None:
    c = cipher()
    token = c.encrypt(value, "residents.display_name")
    assert token.startswith(b"k1:")
    assert c.decrypt(token, "residents.display_name") == value


def test_same_value_seals_differently_each_time() -> None:
    c = cipher()
    assert c.encrypt("王秀英") != c.encrypt("王秀英")
    assert "王秀英".encode() not in c.encrypt("王秀英")


def test_tampering_wrong_field_and_wrong_key_are_refused() -> None:
    c = cipher()
    token = bytearray(c.encrypt("138 0000 0000", "responders.phone"))
    with pytest.raises(DecryptError, match="field"):
        c.decrypt(bytes(token), "residents.display_name")
    token[-1] ^= 1
    with pytest.raises(DecryptError, match="tampered"):
        c.decrypt(bytes(token), "responders.phone")
    other = PiiCipher.from_settings(f"k1:{K2}", INDEX)
    with pytest.raises(DecryptError):
        other.decrypt(c.encrypt("x"))
    with pytest.raises(DecryptError, match="unknown key id"):
        PiiCipher.from_settings(f"k9:{K2}", INDEX).decrypt(c.encrypt("x"))
    with pytest.raises(DecryptError, match="truncated"):
        c.decrypt(b"k1:short")
    with pytest.raises(DecryptError, match="prefix"):
        c.decrypt(b"no prefix at all")


def test_rotation_keeps_old_values_readable() -> None:
    old = cipher(f"k1:{K1}")
    token = old.encrypt("地址")
    new = cipher(f"k2:{K2},k1:{K1}")
    assert new.current == "k2"
    assert new.needs_rotation(token)
    assert new.decrypt(token) == "地址"
    resealed = new.encrypt(new.decrypt(token))
    assert not new.needs_rotation(resealed) and resealed.startswith(b"k2:")


def test_blind_index_is_keyed_normalised_and_per_field() -> None:
    c = cipher()
    assert c.blind_index("+86 138-0013-8000", "p") == c.blind_index("+8613800138000", "p")
    assert c.blind_index("138", "p") != c.blind_index("139", "p")
    assert c.blind_index("138", "p") != c.blind_index("138", "q")
    other_index = PiiCipher.from_settings(f"k1:{K1}", new_key())
    assert other_index.blind_index("138", "p") != c.blind_index("138", "p")


@pytest.mark.parametrize(
    "spec",
    ["", "k1", f"K1:{K1}", f"k1:{K1},k1:{K2}", "k1:not-base64!!", "k1:" + new_key()[:20]],
)
def test_bad_key_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_keys(spec)


def test_bad_index_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        PiiCipher.from_settings(f"k1:{K1}", "short")
