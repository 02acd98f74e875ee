"""Passwords: the policy a new one must meet, argon2id hashing, and the cache of verifications.

argon2id is slow on purpose (tens of milliseconds and tens of MB per verification), which is
what makes a stolen hash expensive to crack, and also what would make every Basic-auth request
slow. :class:`VerifiedPasswords` remembers successful verifications keyed by the user, a keyed
digest of the password and the *stored hash*: a repeated request costs one database read, and a
changed password (a new hash, with a new salt) never matches an old entry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections import OrderedDict
from functools import cache
from importlib.resources import files
from threading import Lock

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shipyard.errors import InvalidInput

__all__ = ["MIN_LENGTH", "VerifiedPasswords", "check_password", "hash_password", "is_argon2id", "needs_rehash",
           "verify_password"]

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; this only keeps a request from hashing megabytes
_HASHER = PasswordHasher(type=Type.ID)  # argon2-cffi's RFC 9106 "low memory" defaults: 64 MiB, 3 passes
_EDGE = string.digits + string.punctuation + string.whitespace
_UNLEET = str.maketrans({"@": "a", "4": "a", "0": "o", "3": "e", "$": "s", "5": "s", "1": "i", "!": "i"})


def _core(text: str) -> str:
    """What is left of a password once the usual decorations are gone: ``P@ssw0rd2024!`` → ``password``."""
    return text.lower().strip(_EDGE).translate(_UNLEET)


@cache
def _common() -> tuple[frozenset[str], frozenset[str]]:
    lines = files("shipyard.auth").joinpath("common_passwords.txt").read_text(encoding="utf-8").splitlines()
    entries = frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))
    # A core shorter than 4 letters ("abc" from "abc123abc123"?) would refuse too much.
    cores = frozenset(c for c in map(_core, entries) if len(c) >= 4)
    return entries, cores


def check_password(password: str, *, name: str | None = None) -> None:
    """Raise ``InvalidInput`` unless ``password`` may be used: at least 12 characters, not one of
    the well-known weak passwords (nor one of them with digits or symbols around it), not a few
    characters repeated, not the user's name."""
    if not isinstance(password, str):
        raise InvalidInput("password: expected a string", field="password")
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password is too short ({len(password)} characters): use at least {MIN_LENGTH}; "
                           "a few unrelated words make a long password that is easy to remember", field="password")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"the password is longer than {MAX_LENGTH} characters: use a shorter one", field="password")
    entries, cores = _common()
    core = _core(password)
    if password.lower() in entries or core in cores:
        raise InvalidInput("that password is on the list of common passwords that attackers try first: "
                           "choose another one", field="password")
    if len(set(password.lower())) < 4:
        raise InvalidInput("the password repeats too few characters to be hard to guess: choose another one",
                           field="password")
    if name and name.lower() in (password.lower(), core):
        raise InvalidInput("the password must not be the user name: choose another one", field="password")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` in PHC string form (``$argon2id$v=19$m=…``), with a random salt."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; ``False`` for a hash that is not argon2 at all."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` was made with other parameters than today's (rehash at the next sign-in)."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def is_argon2id(stored_hash: str) -> bool:
    return stored_hash.startswith("$argon2id$")


class VerifiedPasswords:
    """Successful verifications of one process, at most ``size`` of them, least recently used
    dropped first. The password itself is never kept: only an HMAC of it under a key made at
    start, so the cache is no dictionary of fast hashes to attack."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[str, None] = OrderedDict()
        self._lock = Lock()

    def _entry(self, name: str, password: str, stored_hash: str) -> str:
        message = "\0".join((name, hashlib.sha256(password.encode()).hexdigest(), stored_hash))
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def __contains__(self, item: tuple[str, str, str]) -> bool:
        entry = self._entry(*item)
        with self._lock:
            if entry not in self._entries:
                return False
            self._entries.move_to_end(entry)
            return True

    def add(self, name: str, password: str, stored_hash: str) -> None:
        entry = self._entry(name, password, stored_hash)
        with self._lock:
            self._entries[entry] = None
            self._entries.move_to_end(entry)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
