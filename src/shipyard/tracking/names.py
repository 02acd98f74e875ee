"""Readable default run names, like ``bold-heron-42``."""

from __future__ import annotations

import random

_ADJECTIVES = ("amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "gentle", "glad", "grand",
               "keen", "lively", "lucky", "merry", "nimble", "proud", "quick", "quiet", "rapid", "sharp",
               "shy", "silent", "sleek", "smooth", "steady", "sunny", "swift", "tidy", "vivid", "wise")
_NOUNS = ("badger", "bear", "crane", "deer", "dolphin", "eagle", "falcon", "finch", "fox", "gull",
          "hare", "hawk", "heron", "ibis", "koala", "lark", "lynx", "mole", "newt", "otter",
          "owl", "panda", "robin", "seal", "shrike", "stork", "swan", "tern", "vole", "wren")


def generate_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}"
