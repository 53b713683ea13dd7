"""SMS encoding and segments: GSM-7 when every character fits, else UCS-2."""

from __future__ import annotations

from dataclasses import dataclass

#: The GSM 03.38 basic character set.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters of the extension table: each takes two septets (escape + char).
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


#: Spaces CLDR formats with (no-break, narrow no-break, thin) that GSM-7 has no place for: one of
#: them would turn a whole message into UCS-2, at less than half the characters per segment.
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "})
#: Typographic punctuation and its GSM-7 look-alike, used when that makes a whole text GSM-7.
_PLAIN_PUNCTUATION = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
    }
)


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def for_sms(text: str) -> str:
    """A text as it is best sent in segments: plain spaces for CLDR's no-break ones, and plain
    quotes and dashes where that lets the whole text stay GSM-7 (a text with other characters
    outside GSM-7 keeps its typography: it is UCS-2 anyway)."""
    text = text.translate(_SPACES)
    if is_gsm7(text):
        return text
    plain = text.translate(_PLAIN_PUNCTUATION)
    return plain if is_gsm7(plain) else text


@dataclass(frozen=True)
class SmsInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def sms_info(text: str) -> SmsInfo:
    """Encoding, length in units and the number of segments a text takes."""
    if is_gsm7(text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, part = 160, 153
        encoding = "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
        encoding = "UCS-2"
    if units <= single:
        return SmsInfo(encoding, units, 1 if units else 0)
    return SmsInfo(encoding, units, -(-units // part))
