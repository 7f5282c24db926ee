"""Small helpers for the words jointnet prints (torch-free, imported from every layer)."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def article(word: str) -> str:
    """'an ae run', 'a gan run': the indefinite article by the word's first sound (vowel letters)."""
    return f"{'an' if word[:1].lower() in 'aeio' else 'a'} {word}"
