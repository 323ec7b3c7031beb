"""Numbers as an answer and a passage write them: digits with or without thousands commas, Chinese
numerals, and the 万/亿 that scales them. The checks that an answer's numbers are in its sources
look them up with these."""
from __future__ import annotations

import re
import warnings

from .script import to_search_form

_NUMBER = re.compile(r"\d+(?:[.,，]\d+)*")
_CHINESE_NUMERALS = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+")


def numbers(text: str) -> list[str]:
    """The numbers the text writes in digits, in search form (1,810 as 1810)."""
    return [_whole(n) for n in _NUMBER.findall(to_search_form(text))]


def _whole(number: str) -> str:
    """A number without thousands commas and without a trailing point or comma."""
    return re.sub(r"[,，](?=\d{3}\b)", "", number).rstrip(".,，")


def number_pattern(number: str) -> str:
    """A regex for the number written whole: 15 is not in 150 or 1.5."""
    return rf"(?<![\d.]){re.escape(number)}(?![\d]|\.\d)"


def contains_number(passage_form: str, number: str) -> bool:
    return re.search(number_pattern(number), passage_form) is not None


_SCALE = {"万": 10**4, "亿": 10**8}
_SCALED = re.compile(r"(\d+(?:[.,，]\d+)*)([余多]?[万亿])?")


def scaled_numbers(text: str) -> list[str]:
    """The text's numbers with the 万 or 亿 that scales them (100万, 1.5亿, 100): the figure a reader
    takes away, so 100家 is not the 100 of 100万元."""
    return [_whole(n) + (scale or "")[-1:] for n, scale in _SCALED.findall(to_search_form(text))]


def contains_scaled(passage_form: str, number: str) -> bool:
    """Whether a `number_form` text states a `scaled_numbers` figure at its scale: 100万 as 100万,
    100余万 or 1000000; a bare 100 not as the 100 of 100万."""
    if number[-1] in _SCALE:
        digits, scale = number[:-1], number[-1]
        if re.search(rf"{number_pattern(digits)}[余多]?{scale}", passage_form):
            return True
        whole = float(digits) * _SCALE[scale]
        return whole.is_integer() and contains_number(passage_form, str(int(whole)))
    return re.search(rf"{number_pattern(number)}(?![余多]?[万亿])", passage_form) is not None


def number_form(text: str) -> str:
    """What an answer's numbers are looked up in: the text's search form without thousands commas
    (1,810 is 1810) and, when it writes numbers in Chinese numerals, the same again in digits
    (三十年 → 30年, 两万册 → 20000册, 一千八百一十名 → 1810名), which is how a model often copies them."""
    form = _plain(text)
    digits = _in_digits(form)
    return form if digits == form else f"{form}\n{digits}"


def spelled_as(number: str, text: str) -> str:
    """How `text` writes `number` in Chinese numerals (30 → 三十, in search form), or "" if it writes it
    in digits or not at all."""
    form = _plain(text)
    if contains_number(form, number):
        return ""
    for run in dict.fromkeys(_CHINESE_NUMERALS.findall(form)):
        if _in_digits(run) == number:
            return run
    return ""


def _plain(text: str) -> str:
    return to_search_form(text).replace(",", "")


def _in_digits(text: str) -> str:
    if not _CHINESE_NUMERALS.search(text):
        return text
    import cn2an

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cn2an warns about every numeral character it cannot read (万 alone)
        return cn2an.transform(text, "cn2an")
