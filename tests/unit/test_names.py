"""Reserved names compared as a Unicode skeleton (contract §4, Identity)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chillout_project.names import SYSTEM_USERNAME, name_is_reserved, name_skeleton

PASSES_FOR_SYSTEM = [
    "System",
    "system",
    "SYSTEM",
    "sYsTeM",
    " System ",
    "Ѕystem",  # Cyrillic capital dze
    "Ѕуѕтем",  # Cyrillic throughout
    "ЅУЅТЕМ",
    "Sуstеm",  # Cyrillic у and е inside Latin
    "System\u200b",  # zero-width space
    "Sys\u200dtem",  # zero-width joiner
    "\u202eSystem",  # right-to-left override
    "System\u2060",  # word joiner
    "\ufeffSystem",  # byte order mark
    "Sys\u00adtem",  # soft hyphen
    "Sy\u034fstem",  # combining grapheme joiner
    "System\ufe0f",  # variation selector
    "System\u3164",  # Hangul filler
    "ＳＹＳＴＥＭ",  # fullwidth
    "Ｓystem",
    "𝐒𝐲𝐬𝐭𝐞𝐦",  # mathematical bold
    "𝕾𝖞𝖘𝖙𝖊𝖒",  # mathematical fraktur
    "ⓈⓎⓈⓉⒺⓂ",  # circled
    "Ꮪystem",  # Cherokee
    "Systeḿ",  # an accent on a Latin letter
    "S\u0336ystem",  # strikethrough
    "System\u3000",  # ideographic space
]

OTHER_NAMES = [
    "Дмитрий",
    "李",
    "李小龙",
    "José",
    "Ünal",
    "محمد",
    "Ελένη",
    "Anonymous",
    "alice",
    "Systems",
    "Sys tem",
    "S y s t e m",
    "5YSTEM",
    "$ystem",
    "System2",
    "SystemAdmin",
    "🙂",
]


@pytest.mark.parametrize("name", PASSES_FOR_SYSTEM)
def test_names_that_pass_for_system_are_reserved(name):
    assert name_is_reserved(name), name_skeleton(name)


@pytest.mark.parametrize("name", OTHER_NAMES)
def test_other_names_stay_allowed(name):
    assert not name_is_reserved(name), name_skeleton(name)


def test_the_reserved_name_itself():
    assert name_is_reserved(SYSTEM_USERNAME)
    assert name_skeleton(SYSTEM_USERNAME) == "system"


@pytest.mark.parametrize("name", ["Дмитрий", "李", "محمد", "Ελένη"])
def test_a_non_latin_name_keeps_a_non_empty_skeleton(name):
    assert name_skeleton(name)


def test_a_lone_surrogate_does_not_break_it():
    """JSON may carry one; it never raises, and next to `System` it hides nothing."""
    assert not name_is_reserved("a\ud800b")
    assert name_is_reserved("System\udfff")


INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u034f", "\ufe0f", "\u202e"])


@given(st.lists(INVISIBLE, max_size=6), st.randoms(use_true_random=False))
def test_invisible_characters_anywhere_change_nothing(invisibles, random):
    name = list(SYSTEM_USERNAME)
    for char in invisibles:
        name.insert(random.randint(0, len(name)), char)
    assert name_is_reserved("".join(name))


@given(st.text(max_size=64))
def test_any_text_has_a_skeleton(name):
    assert isinstance(name_skeleton(name), str)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=64))
def test_ascii_case_never_matters(name):
    assert name_skeleton(name.upper()) == name_skeleton(name.lower())
