"""API token secrets: ``shy_<token id>_<secret>``.

The token id (16 hex characters) is public: it names the token in lists, logs and the audit
trail, and finds its row in one indexed lookup. The secret part is 43 URL-safe characters from
:mod:`secrets` (256 bits). The store keeps only the SHA-256 of the whole string: a secret this
random needs no slow hash, and the comparison is constant-time. The ``shy_`` prefix lets secret
scanners (and people) recognise a leaked Shipyard token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from shipyard.errors import Unauthenticated

__all__ = ["PREFIX", "hash_secret", "new_secret", "new_token_id", "parse_secret", "secret_matches"]

PREFIX = "shy_"
_SECRET = re.compile(r"shy_([0-9a-f]{16})_([A-Za-z0-9_-]{32,128})")


def new_token_id() -> str:
    return secrets.token_hex(8)


def new_secret(token_id: str) -> str:
    """The secret of a new token, shown once to whoever made it."""
    return f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_secret(secret: str) -> str:
    """The token id in ``secret``; ``Unauthenticated`` when it is not shaped like a token."""
    match = _SECRET.fullmatch(secret.strip()) if isinstance(secret, str) else None
    if match is None:
        raise Unauthenticated("the API token is malformed: a Shipyard token looks like shy_<16 hex "
                              "characters>_<secret>; copy it whole, or create a new one with `shipyard tokens create`")
    return match.group(1)


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret.strip()), stored_hash)
