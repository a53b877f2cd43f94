"""Keyed pseudonyms: the same person maps to the same token, which cannot be reversed without the key."""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymizer:
    """HMAC-SHA256 over the value, truncated to 128 bits (enough to keep joins collision-free)."""

    PREFIX = "hmac:"

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonymisation key must be at least 16 bytes")
        self._key = key
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        token = self._cache.get(value)
        if token is None:
            digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
            token = self.PREFIX + digest
            # The same user ids recur across every batch; bound the cache so it cannot grow unbounded.
            if len(self._cache) >= 100_000:
                self._cache.clear()
            self._cache[value] = token
        return token
