"""SMS encoding and segments: GSM-7 when every character fits, else UCS-2."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The GSM 03.38 basic character set.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters of the extension table: each takes two septets (escape + char).
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


#: Spaces CLDR formats with (no-break, narrow no-break, thin, figure) that GSM-7 has no place for:
#: one of them would turn a whole message into UCS-2, at less than half the characters per segment.
_SPACES = re.compile("[\u00a0\u202f\u2009\u2007]")
#: Typographic punctuation and its GSM-7 look-alike, used when that makes a whole text GSM-7.
_LOOK_ALIKES = {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                "\u2026": "..."}  # fmt: skip
_PLAIN_PUNCTUATION = str.maketrans(_LOOK_ALIKES)
_GSM7 = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))
#: Any character GSM-7 cannot carry; and any that no look-alike replaces either.
_NOT_GSM7 = re.compile("[^" + re.escape(_GSM7) + "]")
_NO_LOOK_ALIKE = re.compile("[^" + re.escape(_GSM7 + "".join(_LOOK_ALIKES)) + "]")


def is_gsm7(text: str) -> bool:
    return _NOT_GSM7.search(text) is None


def for_sms(text: str) -> str:
    """A text as it is best sent in segments: plain spaces for CLDR's no-break ones, and plain
    quotes and dashes where that lets the whole text stay GSM-7 (a text with other characters
    outside GSM-7 keeps its typography: it is UCS-2 anyway)."""
    text = _SPACES.sub(" ", text)
    if is_gsm7(text) or _NO_LOOK_ALIKE.search(text):
        return text
    return text.translate(_PLAIN_PUNCTUATION)


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
