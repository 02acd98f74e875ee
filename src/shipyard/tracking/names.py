"""Readable default run names, like ``bold-heron-42``."""

from __future__ import annotations

import random

_ADJECTIVES = ("amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "gentle", "glad", "grand",
               "keen", "lively", "lucky", "merry", "nimble", "proud", "quick", "quiet", "rapid", "sharp",
               "shy", "silent", "sleek", "smooth", "steady", "sunny", "swift", "tidy", "vivid", "wise")
_NOUNS = ("badger", "bear", "crane", "deer", "dolphin", "eagle", "falcon", "finch", "fox", "gull",
          "hare", "hawk", "heron", "ibis", "koala", "lark", "lynx", "mole", "newt", "otter",
          "owl", "panda", "robin", "seal", "shrike", "stork", "swan", "tern", "vole", "wren")


# Its own generator, seeded from the OS: seed_everything() seeds the global one, and every run
# of a seeded script would otherwise get the same name.
_random = random.Random()


def generate_run_name() -> str:
    return f"{_random.choice(_ADJECTIVES)}-{_random.choice(_NOUNS)}-{_random.randint(1, 999)}"
