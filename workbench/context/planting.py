"""planting.py writes facts with known answers into a document, in the document's own language and style,
each with a near-duplicate distractor: the same clause about another site with another value. It also cuts the
document to a length and finds the place a depth names. It knows nothing about models or scores.

Four kinds of fact, in English and Chinese: an amount ("USD 48,000" / "人民币48,000元"), a date, a party's name
and a clause number ("Article 17" / "第十七条"). A fact's answer is written as `marks`: the canonical numbers
(fact_check.numbers) and words a correct value must contain; its distractor's marks are what a value read
from the distractor contains instead.
"""

import random
import re
from dataclasses import dataclass

from workbench.tasks import fact_check

KINDS = ("amount", "date", "party", "clause")
LANGUAGES = ("en", "zh")

_TOPICS = {
    "en": {
        "amount": ["hosting deposit", "training fee", "audit fee", "escrow payment", "support retainer"],
        "date": ["go-live date", "final audit date", "handover date", "data migration date", "renewal date"],
        "party": ["escrow agent", "hosting provider", "auditor", "insurer", "logistics partner"],
        "clause": ["warranty claims", "data-retention duties", "price adjustments", "audit rights", "spare parts"],
    },
    "zh": {
        "amount": ["托管押金", "培训费", "审计费", "托管付款", "技术支持费"],
        "date": ["上线日期", "终审日期", "移交日期", "数据迁移日期", "续约日期"],
        "party": ["托管代理方", "托管服务商", "审计机构", "保险机构", "物流合作方"],
        "clause": ["质保索赔", "数据留存义务", "价格调整", "审计权利", "备件供应"],
    },
}
_SITES = {
    "en": ["Shanghai site", "Berlin site", "Austin site", "Osaka site", "Lyon site", "Toronto site", "Porto site"],
    "zh": ["上海站点", "柏林站点", "奥斯汀站点", "大阪站点", "里昂站点", "多伦多站点", "波尔图站点"],
}
_COMPANIES = {
    "en": [
        "Granite Peak Holdings Ltd.",
        "Riverbend Logistics Inc.",
        "Cobalt Harbor Insurance Co.",
        "Westgate Audit Partners LLC",
        "Summit Vault Escrow Ltd.",
        "Pinecrest Hosting Inc.",
    ],
    "zh": [
        "宁波海纳物流有限公司",
        "重庆金石审计有限公司",
        "天津长风保险有限公司",
        "西安云栈托管有限公司",
        "厦门鹭岛数据有限公司",
        "武汉江城信息技术有限公司",
    ],
}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_CN_DIGITS = "零一二三四五六七八九"


@dataclass(frozen=True)
class Fact:
    """One planted fact and its distractor. `subject` is what the question asks about ("the audit fee for the
    Osaka site"); `keywords` find its candidate sentences as docqa's templates do."""

    id: str
    kind: str
    language: str
    subject: str
    keywords: tuple[str, ...]
    sentence: str
    marks: tuple[str, ...]
    distractor: str
    distractor_marks: tuple[str, ...]

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "language": self.language,
            "subject": self.subject,
            "sentence": self.sentence,
            "marks": list(self.marks),
            "distractor": self.distractor,
            "distractor_marks": list(self.distractor_marks),
        }


def language_of(text: str) -> str:
    """zh when a tenth or more of the letters are CJK characters, else en."""
    letters = [ch for ch in text[:20_000] if ch.isalpha()]
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in letters)
    return "zh" if letters and cjk / len(letters) >= 0.1 else "en"


def _cn_number(n: int) -> str:
    """17 → 十七, 21 → 二十一, 10 → 十 (1-99)."""
    tens, ones = divmod(n, 10)
    return ("" if tens <= 1 else _CN_DIGITS[tens]) + ("十" if tens else "") + (_CN_DIGITS[ones] if ones else "")


def _value(kind: str, language: str, rng: random.Random, taken: set) -> tuple[str, tuple[str, ...]]:
    """A value of the kind, as written in the clause, and its marks; never one already in `taken`."""
    while True:
        if kind == "amount":
            amount = rng.randrange(12, 990) * 1000
            text = f"USD {amount:,}" if language == "en" else f"人民币{amount:,}元"
            marks = (str(amount),)
        elif kind == "date":
            year, month, day = rng.choice([2026, 2027, 2028]), rng.randrange(1, 13), rng.randrange(1, 29)
            text = f"{day} {_MONTHS[month - 1]} {year}" if language == "en" else f"{year}年{month}月{day}日"
            marks = (
                (str(day), _MONTHS[month - 1].lower(), str(year))
                if language == "en"
                else (str(year), str(month), str(day))
            )
        elif kind == "party":
            text = rng.choice(_COMPANIES[language])
            marks = (text,)
        else:
            number = rng.randrange(11, 60)
            text = f"Article {number}" if language == "en" else f"第{_cn_number(number)}条"
            marks = (str(number),)
        if marks not in taken:
            taken.add(marks)
            return text, marks


def _clause(kind: str, language: str, topic: str, site: str, value: str) -> str:
    if language == "en":
        return {
            "amount": f"Supplementary terms. The {topic} for the {site} is {value}, payable by Party A.",
            "date": f"Supplementary terms. The {topic} for the {site} is {value}.",
            "party": f"Supplementary terms. The {topic} for the {site} is {value}",
            "clause": f"Supplementary terms. The {topic} for the {site} are governed by {value} of this Contract.",
        }[kind]
    # 40 characters or more: docqa.split_sentences joins a shorter sentence to the next one
    lead, tail = "补充条款：经双方协商一致，", "，本条款与合同正文具有同等效力。"
    return {
        "amount": f"{lead}{site}的{topic}为{value}，由甲方支付{tail}",
        "date": f"{lead}{site}的{topic}为{value}{tail}",
        "party": f"{lead}{site}的{topic}为{value}{tail}",
        "clause": f"{lead}{site}的{topic}适用本合同{value}的约定{tail}",
    }[kind]


def _subject(language: str, topic: str, site: str) -> str:
    return f"the {topic} for the {site}" if language == "en" else f"{site}的{topic}"


def make_facts(count: int, language: str, rng: random.Random, prefix: str = "") -> list[Fact]:
    """`count` facts of different kinds and topics, each with a distractor about another site."""
    first = rng.randrange(len(KINDS))
    kinds = [KINDS[(first + i) % len(KINDS)] for i in range(count)]
    used_topics, taken, facts = set(), set(), []
    for i, kind in enumerate(kinds):
        topic = rng.choice([t for t in _TOPICS[language][kind] if t not in used_topics] or _TOPICS[language][kind])
        used_topics.add(topic)
        site, other = rng.sample(_SITES[language], 2)
        value, marks = _value(kind, language, rng, taken)
        wrong, wrong_marks = _value(kind, language, rng, taken)
        while has_marks(value, wrong_marks) or has_marks(wrong, marks):  # 3 March 2027 against 9 March 2027...
            wrong, wrong_marks = _value(kind, language, rng, taken)
        facts.append(
            Fact(
                f"{prefix}{i}",
                kind,
                language,
                _subject(language, topic, site),
                (topic.lower(),),
                _clause(kind, language, topic, site, value),
                marks,
                _clause(kind, language, topic, other, wrong),
                wrong_marks,
            )
        )
    return facts


def has_marks(text: str, marks: tuple[str, ...]) -> bool:
    """Every mark in the text: a number among its numbers (386,000 = 38.6万), a word or name anywhere in it
    (whitespace and case ignored)."""
    if not marks:
        return False
    found = fact_check.numbers(text)
    flat = re.sub(r"\s+", "", text).lower()
    return all(m in found if re.fullmatch(r"[\d.]+", m) else re.sub(r"\s+", "", m).lower() in flat for m in marks)


def boundary(text: str, offset: int) -> int:
    """The start of the line (or sentence) nearest `offset`: where a clause can go without cutting one."""
    if offset <= 0:
        return 0
    if offset >= len(text):
        return len(text)
    ends = [m.end() for m in re.finditer(r"\n|(?<=[。；！？])|(?<=[.;!?])\s", text)]
    if not ends:
        return offset
    return min(ends, key=lambda e: abs(e - offset))


def cut(text: str, chars: int) -> str:
    """At most the text's first `chars` characters, ended at a line or sentence boundary."""
    if chars >= len(text):
        return text
    ends = [m.end() for m in re.finditer(r"\n|(?<=[。；！？])|(?<=[.;!?])\s", text[: chars + 1])]
    return text[: ends[-1] if ends else chars].rstrip()


def plant(text: str, facts: list[Fact], depth_pct: float, distractor_depth_pct: float) -> str:
    """The text with the facts' clauses at `depth_pct` (0: first, 100: last) and their distractors together at
    `distractor_depth_pct`, each on its own line."""
    here = boundary(text, round(len(text) * depth_pct / 100))
    there = boundary(text, round(len(text) * distractor_depth_pct / 100))
    inserts = sorted([(here, 0, [f.sentence for f in facts]), (there, 1, [f.distractor for f in facts])])
    out, last = [], 0
    for at, _, lines in inserts:
        out.append(text[last:at])
        out.append(
            ("\n" if at and not text[:at].endswith("\n") else "")
            + "\n".join(lines)
            + ("\n" if at < len(text) and not text[at:].startswith("\n") else "")
        )
        last = at
    out.append(text[last:])
    return "".join(out)


def distractor_depth(depth_pct: float) -> float:
    """Where the distractors of facts at `depth_pct` go: half the document away (0 ↔ 50, 25 ↔ 75, 100 → 50)."""
    return depth_pct + 50 if depth_pct < 50 else depth_pct - 50
