"""fact_check.py reads the checkable facts out of a piece of text (numbers, amounts, percentages and dates as
numbers; company names) and says whether one text's facts all appear in another's. Document QA uses it
to mark a value `supported` only when its quote says the same: "12,000,000 元" beside a quote that says
"386,000 元" is not. Normalises 386,000 = 386000 = 38.6万 = 叁拾捌万陆仟. Knows nothing about models.
"""

import re

_DIGITS = {
    **{c: i for i, c in enumerate("零一二三四五六七八九")},
    **{c: i for i, c in enumerate("〇壹贰叁肆伍陆柒捌玖")},
    "两": 2,
    "貳": 2,
    "參": 3,
    "陸": 6,
}
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
_CN = "".join(_DIGITS) + "".join(_SMALL_UNITS) + "".join(_BIG_UNITS)
_CN_RUN = re.compile(f"[{_CN}]+")
_ARABIC = re.compile(r"(?<![\d.,，])(\d{1,3}(?:[,，]\d{3})+(?!\d)|\d+)(?:\.(\d+))?\s*(万|亿)?")
_COMPANY = re.compile(
    r"[\u4e00-\u9fff]{2,30}?(?:有限责任公司|股份有限公司|有限公司|公司)|"
    r"\b[A-Z][\w&.'-]*(?: [A-Z][\w&.'-]*){0,6} (?:Ltd\.?|Inc\.?|LLC|Co\.|Corp\.?|GmbH)"
)
_COUNTED_AFTER = "元天日年月%个"


def chinese_number(text: str) -> int:
    """叁拾捌万陆仟 → 386000, 一百二十 → 120, 十五 → 15, 两千 → 2000."""
    total = section = digit = 0
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch in _SMALL_UNITS:
            section += (digit or 1) * _SMALL_UNITS[ch]
            digit = 0
        elif ch in _BIG_UNITS:
            total += (section + digit) * _BIG_UNITS[ch]
            section = digit = 0
    return total + section + digit


def _canonical(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def numbers(text: str) -> set[str]:
    """Every number in the text, canonical: thousands separators dropped, 万/亿 multiplied out, Chinese
    numerals converted where they count something (a unit inside, or 元/天/日/年/… after them)."""
    found = set()
    for match in _ARABIC.finditer(text):
        whole, fraction, unit = match.groups()
        value = float(re.sub(r"[,，]", "", whole) + (f".{fraction}" if fraction else ""))
        found.add(_canonical(value * (_BIG_UNITS[unit] if unit else 1)))
    for match in _CN_RUN.finditer(text):
        run, after = match.group(), text[match.end() : match.end() + 1]
        counts = any(c in _SMALL_UNITS or c in _BIG_UNITS for c in run) or (after and after in _COUNTED_AFTER)
        has_digit = any(c in _DIGITS for c in run) or run in ("十", "拾")  # 百 or 千 alone names no amount
        if counts and has_digit:
            found.add(_canonical(chinese_number(run)))
    return found


def companies(text: str) -> set[str]:
    return {re.sub(r"\s+", " ", m.group()).strip() for m in _COMPANY.finditer(text)}


def unsupported(value: str, quote: str) -> list[str]:
    """The facts in `value` that `quote` does not contain (empty: every fact is supported)."""
    quoted = numbers(quote)
    missing = sorted(n for n in numbers(value) if n not in quoted)
    flat_quote = re.sub(r"\s+", "", quote)
    missing += sorted(c for c in companies(value) if re.sub(r"\s+", "", c) not in flat_quote)
    return missing
