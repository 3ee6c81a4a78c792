"""Keys that cannot be printed by accident, and the scrubber for text that might hold one.

A `Secret` shows `Secret('sk-a…(51 chars)')`-style masks in repr, str and f-strings; the
real value is only reachable through `reveal()`, which the transport calls when it
writes the header. `scrub(text, *secrets)` removes known keys and key-shaped tokens from
any text before it reaches an exception, a log line or the terminal.
"""

from __future__ import annotations

import re

__all__ = ["Secret", "key_problem", "mask", "scrub"]


class Secret:
    """An API key. Its repr and str are masked; compare and hash like the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "") -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({mask(self._value)!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the key to wherever the pickle goes.
        raise TypeError("a Secret cannot be pickled")


def mask(value: str | None) -> str:
    """`sk-t…(36 chars)`: enough to tell two keys apart, never enough to use one."""
    if not value:
        return "[no key]"
    if len(value) <= 8:
        return "****"
    return f"{value[:4]}…({len(value)} chars)"


# Tokens that look like keys even when we do not know them (a server echoing a key
# back, a key in a user-supplied header). Prefixes from the reference's scrubber plus
# the common providers', and `hgw-`, the keys of `human gateway`.
_KEY_SHAPES = re.compile(
    r"(?i:bearer)\s+[A-Za-z0-9._~+/:=-]{8,}"
    r"|(?:sk-|sk_|xai-|gsk_|pplx-|nvapi-|AIza|ghp_|gho_|ghs_|ghu_|glpat-|xox[bp]-|hf_|pypi-|npm_|shpat_|AKIA|hgw-)"
    r"[A-Za-z0-9._-]{6,}"
)


# user:password@ in any URL (a proxy URL's credentials are secrets too).
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]*@")


def scrub(text: str, *secrets: Secret | str | None) -> str:
    """Replace every known secret, anything shaped like a key, and the credentials in
    a URL with a mask."""
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value and len(value) >= 4:
            text = text.replace(value, "[REDACTED]")
    if "://" in text:
        text = _URL_CREDENTIALS.sub("****:****@", text)
    return _KEY_SHAPES.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    token = match.group(0)
    if token[:6].lower() == "bearer":
        return "Bearer [REDACTED]"
    return "[REDACTED]"


def key_problem(value: str) -> str | None:
    """What makes a key unusable in an HTTP header, said without showing the key.
    (A newline would split the header; a zero-width space pasted from a web page cannot
    be encoded at all; both used to surface as raw errors holding the key, issue 10.)"""
    if value.isascii() and value.isprintable() and " " not in value:
        return None
    for position, char in enumerate(value, 1):
        if char in "\r\n":
            return f"a line break (character {position})"
        if ord(char) < 32 or ord(char) == 127:
            return f"a control character (character {position})"
        if char.isspace():
            return f"whitespace (character {position})"
        if not char.isascii():
            import unicodedata

            label = unicodedata.name(char, f"U+{ord(char):04X}").lower()
            return f"a non-ASCII character, {label} (U+{ord(char):04X}, character {position})"
    return None
