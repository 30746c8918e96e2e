"""Reserved display names, compared as a Unicode skeleton (contract §4, Identity).

`System` signs the call notices; a user named `Ѕystem` (Cyrillic Ѕ), `System` with a
zero-width space, or `ＳＹＳＴＥＭ` (fullwidth) would pass for it in every client. So a name
is refused when its *skeleton* equals the skeleton of a reserved name. The skeleton:

1. NFKC: compatibility forms fold (fullwidth, mathematical alphabets, circled letters,
   ligatures), so `ＳＹＳＴＥＭ` and `𝐒𝐲𝐬𝐭𝐞𝐦` become `SYSTEM` / `System`;
2. invisible characters removed: every format character (category Cf: zero-width space
   and joiners, bidi controls, soft hyphen, BOM) and the other default-ignorable code
   points (variation selectors, the combining grapheme joiner, Hangul fillers); a lone
   surrogate (JSON allows one) becomes U+FFFD;
3. confusables mapped to their Latin look-alike and lower-cased by `decancer_py`
   (bindings of the Rust `decancer` crate, whose tables follow Unicode's confusables
   data plus the homoglyphs seen in abuse: Cyrillic `Ѕуѕтем`, Cherokee `Ꮪ`, Greek,
   strikethrough and accents on Latin letters);
4. case-folded and stripped of surrounding whitespace.

Deliberately NOT folded: spaces between letters (`S y s t e m` reads differently), digits
and symbols that merely resemble letters (`5YSTEM`, `$ystem`). Names in other scripts are
untouched as names: only their skeleton is compared, and no skeleton of `Дмитрий` or `李`
equals `system`.

Pure and cheap (names are at most 64 characters); imports no Django.
"""

from __future__ import annotations

import unicodedata

import decancer_py

SYSTEM_USERNAME = "System"

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties) outside category Cf, which
# is removed whole: they render as nothing, or as nothing after a letter.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong / jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # unassigned specials
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol formatting
    (0xE0000, 0xE0FFF),  # tags and variation selectors supplement
)


def _invisible(char: str) -> bool:
    code = ord(char)
    if unicodedata.category(char) == "Cf":
        return True
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def _visible(text: str) -> str:
    """`text` without invisible characters; lone surrogates as U+FFFD."""
    kept = []
    for char in text:
        if 0xD800 <= ord(char) <= 0xDFFF:
            kept.append("\ufffd")
        elif not _invisible(char):
            kept.append(char)
    return "".join(kept)


def name_skeleton(name: str) -> str:
    """The form two names share when one can pass for the other on screen."""
    text = _visible(unicodedata.normalize("NFKC", _visible(name)))
    cured = str(decancer_py.parse(text))
    return unicodedata.normalize("NFKC", cured).casefold().strip()


_RESERVED_SKELETONS = frozenset({name_skeleton(SYSTEM_USERNAME)})


def name_is_reserved(name: str) -> bool:
    """True when `name` could pass for a reserved name (`System`)."""
    return name_skeleton(name) in _RESERVED_SKELETONS
