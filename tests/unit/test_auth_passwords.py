"""Passwords (policy, argon2id, the cache of verifications) and API token secrets."""

from __future__ import annotations

import re

import pytest

from shipyard.auth.passwords import (
    MIN_LENGTH,
    VerifiedPasswords,
    check_password,
    hash_password,
    is_argon2id,
    needs_rehash,
    verify_password,
)
from shipyard.auth.tokens import hash_secret, new_secret, new_token_id, parse_secret, secret_matches
from shipyard.errors import InvalidInput, Unauthenticated


@pytest.mark.parametrize("password", ["short", "elevenchars", ""], ids=["5", "11", "empty"])
def test_a_password_under_twelve_characters_is_refused(password: str) -> None:
    with pytest.raises(InvalidInput, match=f"too short .*at least {MIN_LENGTH}"):
        check_password(password)


@pytest.mark.parametrize("password", ["password1234", "PASSWORD1234", "Qwerty123456", "correcthorsebatterystaple",
                                      "P@ssw0rd2024!!", "Password!!!!2025", "1q2w3e4r5t6y", "September2024",
                                      "shipyard1234", "!!Administrator99"])
def test_common_passwords_and_their_decorated_forms_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput, match="common passwords"):
        check_password(password)


@pytest.mark.parametrize("password", ["aaaaaaaaaaaaaa", "abababababababab", "!!!!!!!!!!!!!"])
def test_a_few_repeated_characters_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput):
        check_password(password)


def test_the_user_name_is_not_a_password() -> None:
    with pytest.raises(InvalidInput, match="user name"):
        check_password("margaret.hamilton", name="Margaret.Hamilton")
    with pytest.raises(InvalidInput, match="user name"):
        check_password("margaret.hamilton2024", name="margaret.hamilton")


@pytest.mark.parametrize("password", ["tulip-granite-orbit", "correct horse staple moon", "xK9#mP2$vL5@",
                                      "monkey-mountain-99", "8391-2047-5521"])
def test_long_uncommon_passwords_pass(password: str) -> None:
    check_password(password, name="ana")


def test_the_bundled_list_is_a_few_hundred_long_passwords() -> None:
    from importlib.resources import files

    lines = files("shipyard.auth").joinpath("common_passwords.txt").read_text().splitlines()
    entries = [line for line in lines if line and not line.startswith("#")]
    assert len(entries) >= 300
    assert all(len(e) >= MIN_LENGTH for e in entries)


def test_hashes_are_argon2id_salted_and_verify() -> None:
    first, second = hash_password("tulip-granite-orbit"), hash_password("tulip-granite-orbit")
    assert is_argon2id(first)
    assert first.startswith("$argon2id$v=19$")
    assert first != second  # a salt of its own each time
    assert verify_password(first, "tulip-granite-orbit")
    assert not verify_password(first, "tulip-granite-orbiT")
    assert not verify_password("not a hash", "tulip-granite-orbit")
    assert not needs_rehash(first)
    assert needs_rehash("$2b$12$legacybcrypt")


def test_the_verification_cache_is_keyed_by_name_password_and_stored_hash() -> None:
    cache = VerifiedPasswords(size=2)
    cache.add("ana", "tulip-granite-orbit", "$argon2id$one")
    assert ("ana", "tulip-granite-orbit", "$argon2id$one") in cache
    assert ("ana", "tulip-granite-orbit", "$argon2id$two") not in cache  # the password changed
    assert ("ana", "tulip-granite-orbiT", "$argon2id$one") not in cache
    assert ("bob", "tulip-granite-orbit", "$argon2id$one") not in cache
    cache.add("bob", "x" * 12, "h2")
    cache.add("cy", "y" * 12, "h3")  # over its size: the least recently used goes
    assert len(cache) == 2
    assert ("ana", "tulip-granite-orbit", "$argon2id$one") not in cache


def test_token_secrets_have_the_documented_shape_and_parse_back() -> None:
    token_id = new_token_id()
    assert re.fullmatch(r"[0-9a-f]{16}", token_id)
    secret = new_secret(token_id)
    assert re.fullmatch(rf"shy_{token_id}_[A-Za-z0-9_-]{{43}}", secret)
    assert parse_secret(secret) == token_id
    assert new_secret(token_id) != secret
    stored = hash_secret(secret)
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert secret_matches(secret, stored)
    assert not secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), stored)


@pytest.mark.parametrize("secret", ["", "shy_", "Bearer shy_0123456789abcdef_" + "a" * 43,
                                    "shy_0123456789ABCDEF_" + "a" * 43, "shy_0123456789abcdef_short",
                                    "ghp_0123456789abcdef_" + "a" * 43, "shy_0123456789abcdef_" + "a" * 40 + "!!!"])
def test_malformed_secrets_are_refused_saying_so(secret: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        parse_secret(secret)
