"""Text normalisation shared by training-data generation and classification.

The same function runs on every training example and on every incoming question, so the model never
sees a form at run time that it was not trained on: case, Latin diacritics (people often type
"povoleni" for "povolení"), Arabic-script variants and markup characters are folded away.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["letter_count", "normalise"]

# Arabic and Persian keyboards produce different code points for the same letters.
_ARABIC_SCRIPT = str.maketrans(
    {
        "ي": "ی",  # Arabic yeh -> Farsi yeh
        "ى": "ی",  # alef maksura
        "ك": "ک",  # Arabic kaf -> keheh
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ۀ": "ه",
        "ة": "ه",  # ta marbuta is often typed as heh in chat
        "ؤ": "و",
        "ئ": "ی",
        "ء": "",
        "ـ": "",  # tatweel
        "\u200c": " ",  # zero-width non-joiner (Persian half-space)
        "\u200d": "",
        "ё": "е",
        "đ": "d",  # Croatian: people type "d" or "dj" without a Croatian keyboard
        "’": "'",
        "ʼ": "'",
        "`": "'",
    }
)
# Arabic-Indic and Persian digits -> ASCII, so "١٠ ایام" and "10 ایام" look the same.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
# Characters Rasa's training format would read as entity markup, plus controls.
_MARKUP = re.compile(r"[\[\](){}<>\"#*_|\\]+")
_SPACES = re.compile(r"[^\S\n]+")
# Line breaks are kept (one per run): they separate the sentences of a long message.
_LINES = re.compile(r"\s*\n\s*")


def _strip_latin_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    out: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char):
            base = out[-1] if out else ""
            # Drop accents on Latin letters only: Cyrillic й/ї and Arabic marks keep their meaning.
            if base and base.isascii():
                continue
            if "\u064b" <= char <= "\u065f" or char == "\u0670":  # Arabic harakat are optional marks
                continue
        out.append(char)
    return unicodedata.normalize("NFC", "".join(out))


def normalise(text: str) -> str:
    """Fold ``text`` into the form the NLU model is trained on."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(
        " " if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} and c != "\u200c" else c for c in text
    )
    text = text.casefold().translate(_ARABIC_SCRIPT).translate(_DIGITS)
    text = _strip_latin_marks(text)
    text = _MARKUP.sub(" ", text)
    return _LINES.sub("\n", _SPACES.sub(" ", text)).strip()


def letter_count(text: str) -> int:
    """How many letters (of any script) ``text`` has."""
    return sum(1 for c in text if c.isalpha())
