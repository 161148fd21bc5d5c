"""Person Name matching keys: an upper-case search key, and phonetic keys for ``fuzzymatching=true``."""
from __future__ import annotations

import re

_SOUNDEX = {c: d for d, letters in {"1": "BFPV", "2": "CGJKQSXZ", "3": "DT", "4": "L", "5": "MN", "6": "R"}.items()
            for c in letters}


def soundex(word: str) -> str:
    """American Soundex of one word (letters only); "" for a word without letters."""
    letters = [c for c in word.upper() if "A" <= c <= "Z"]
    if not letters:
        return ""
    code = letters[0]
    last = _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        digit = _SOUNDEX.get(c, "")
        if digit and digit != last:
            code += digit
        if c not in "HW":
            last = digit
    return (code + "000")[:4]


def name_words(pn: str) -> list[str]:
    """The words of the first (alphabetic) group of a PN, split on component and space separators."""
    first_group = pn.split("=", 1)[0]
    return [w for w in re.split(r"[\^\s,]+", first_group) if w]


def name_search_key(pn: str) -> str:
    return pn.upper()


def fuzzy_key(pn: str) -> str:
    """" DOE D000 JANE J500 ": each word and its Soundex, space-delimited, for word-wise LIKE matching."""
    keys: list[str] = []
    for word in name_words(pn.upper()):
        keys += [word, soundex(word)]
    return f" {' '.join(k for k in keys if k)} " if keys else ""
