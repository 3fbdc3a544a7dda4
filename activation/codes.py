"""Activation code text: generated from `secrets`, readable aloud, stored only as a keyed hash."""

import hashlib
import hmac
import math
import secrets

from django.conf import settings

# No 0/O, 1/I/L, and no U (avoids accidental words): 30 symbols, so 10 symbols give 49 bits.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10
GROUP = 5


def generate() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + GROUP] for i in range(0, LENGTH, GROUP))


def normalize(text: str) -> str:
    """What a person may type: any case, spaces or dashes between groups."""
    return "".join(ch for ch in text.upper() if ch not in " -\t")


def digest(text: str) -> str:
    # Keyed, so a leaked table cannot be brute-forced offline without the server's key.
    key = hashlib.sha256(("activation-code:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, normalize(text).encode(), hashlib.sha256).hexdigest()


def entropy_bits() -> float:
    return LENGTH * math.log2(len(ALPHABET))
