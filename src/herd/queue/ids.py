"""Hash ids as bd makes them: `prefix-` + base36 of a hash, length growing with the store."""

from __future__ import annotations

from collections.abc import Callable

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
MIN_LENGTH, MAX_LENGTH = 3, 8

#: Keep the chance that a new id collides with an existing one under ~1/400.
_HEADROOM = 400


def id_length(issue_count: int) -> int:
    """Shortest length whose id space is comfortably larger than the store."""
    for length in range(MIN_LENGTH, MAX_LENGTH + 1):
        if 36**length > issue_count * _HEADROOM:
            return length
    return MAX_LENGTH


def base36(data: bytes, length: int) -> str:
    number = int.from_bytes(data, "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 36)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def new_id(
    prefix: str,
    seed: str,
    issue_count: int,
    taken: Callable[[str], bool],
) -> str:
    """A fresh id for `seed` (title, creator, time); retries with a nonce on collision."""
    # Imported here: hashlib loads OpenSSL (~4 ms), and every CLI command imports this
    # module while only `create` makes ids.
    import hashlib

    length = id_length(issue_count)
    for nonce in range(1000):
        digest = hashlib.sha256(f"{seed}\0{nonce}".encode()).digest()
        candidate = f"{prefix}-{base36(digest, length)}"
        if not taken(candidate):
            return candidate
        if nonce and nonce % 10 == 0 and length < MAX_LENGTH:
            length += 1
    raise RuntimeError("could not find a free id after 1000 tries")


def child_id(parent_id: str, existing_children: int) -> str:
    return f"{parent_id}.{existing_children + 1}"
