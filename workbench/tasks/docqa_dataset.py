"""docqa_dataset.py makes the evaluation set for document QA: technical-services contracts in Chinese
and English with known field values, 3,000-12,000 characters, written as PDF (reportlab; Chinese
through its built-in STSong-Light CID font, no font file needed) and DOCX (python-docx).
The values are invented; any resemblance to real companies is accidental."""

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.export import Exportable
from workbench.tasks import docqa, documents

_COMPANIES = {
    "en": [
        "Northwind Analytics Ltd.",
        "Bluestone Systems Inc.",
        "Harbor Data Services Co.",
        "Maple Ridge Software LLC",
        "Crescent Cloud Solutions Ltd.",
        "Ironwood Engineering Inc.",
        "Silverline Consulting Co.",
        "Oakfield Robotics Ltd.",
    ],
    "zh": [
        "杭州云帆科技有限公司",
        "上海数衡信息技术有限公司",
        "北京启明软件有限公司",
        "深圳海川数据服务有限公司",
        "南京青石系统集成有限公司",
        "成都远景智能科技有限公司",
        "广州恒通网络有限公司",
        "苏州明德工程技术有限公司",
    ],
}
_SERVICES = {
    "en": [
        "deployment of a private large-language-model inference platform",
        "migration of the customer's data warehouse",
        "development of a document-review assistant",
        "maintenance of the customer's GPU cluster",
    ],
    "zh": ["私有化大模型推理平台的部署", "客户数据仓库的迁移", "合同审阅助手的开发", "客户GPU集群的运维"],
}
_BOILERPLATE = {
    "en": [
        "Confidentiality. Each party shall keep confidential all technical and business information disclosed by the other party and shall not disclose it to any third party without prior written consent, except as required by law.",
        "Intellectual property. Deliverables created specifically for Party A under this Contract become the property of Party A upon full payment; pre-existing tools and libraries of Party B remain the property of Party B.",
        "Force majeure. Neither party is liable for delay caused by events beyond its reasonable control, provided it notifies the other party promptly and takes reasonable steps to limit the consequences.",
        "Dispute resolution. The parties shall first try to resolve disputes through friendly negotiation; failing that, either party may bring the dispute before the competent court where Party A is located.",
        "Acceptance. Party A shall test each deliverable within ten working days of receipt and either accept it in writing or list the defects to be corrected.",
        "Personnel. Party B shall assign qualified engineers to the project and shall not replace the project manager without notifying Party A in advance.",
        "Data protection. Party B shall process personal data only on Party A's instructions and shall keep all data within Party A's premises.",
        "Notices. Notices under this Contract shall be in writing and delivered to the addresses stated on the signature page.",
    ],
    "zh": [
        "保密条款：双方应对在合作过程中知悉的对方技术信息和商业信息承担保密义务，未经对方书面同意，不得向任何第三方披露，法律另有规定的除外。",
        "知识产权：乙方为甲方专门开发的交付成果，在甲方付清全部款项后归甲方所有；乙方原有的工具和软件库仍归乙方所有。",
        "不可抗力：因不可抗力导致一方迟延履行的，该方不承担责任，但应及时通知对方并采取合理措施减少损失。",
        "争议解决：双方因本合同发生争议的，应首先友好协商；协商不成的，任何一方均可向甲方所在地有管辖权的人民法院提起诉讼。",
        "验收条款：甲方应在收到交付成果后十个工作日内完成测试，并书面确认验收或列明需要修改的缺陷。",
        "人员安排：乙方应指派具备相应资质的工程师参与项目，未经提前通知甲方不得更换项目经理。",
        "数据保护：乙方仅可按照甲方的指示处理个人数据，并应将全部数据保存在甲方的场所内。",
        "通知条款：本合同项下的通知应以书面形式送达签字页所列地址。",
    ],
}


@dataclass(frozen=True)
class ContractFacts:
    """The values a correct summary must contain, one per field."""

    language: str
    party_a: str
    party_b: str
    service: str
    delivery_days: int
    amount: int
    advance_percent: int
    penalty_per_mille: int  # per day of delay, in thousandths of the contract amount
    notice_days: int


def _facts(rng: random.Random, language: str) -> ContractFacts:
    a, b = rng.sample(_COMPANIES[language], 2)
    return ContractFacts(
        language,
        a,
        b,
        rng.choice(_SERVICES[language]),
        rng.choice([30, 45, 60, 90, 120]),
        rng.randrange(120, 990) * 1000,
        rng.choice([20, 30, 40]),
        rng.choice([1, 2, 3, 5]),
        rng.choice([15, 30, 60]),
    )


def _key_clauses(f: ContractFacts) -> list[str]:
    if f.language == "zh":
        return [
            f"技术服务合同\n甲方（委托方）：{f.party_a}\n乙方（服务方）：{f.party_b}",
            f"第一条 服务内容与交付：乙方为甲方提供{f.service}服务，并应在本合同生效之日起{f.delivery_days}日内完成全部交付。",
            f"第二条 付款方式与金额：本合同总金额为人民币{f.amount:,}元。甲方应在合同签订后十日内支付合同总额的百分之{f.advance_percent}作为预付款，余款在验收合格后三十日内付清。",
            f"第三条 违约责任：乙方逾期交付的，每逾期一日，应按合同总金额的千分之{f.penalty_per_mille}向甲方支付违约金。",
            f"第四条 合同终止：任何一方提前{f.notice_days}日书面通知对方，可以解除本合同；一方严重违约且经催告后仍未改正的，对方可立即终止本合同。",
        ]
    return [
        f"TECHNICAL SERVICES CONTRACT\nParty A (Client): {f.party_a}\nParty B (Provider): {f.party_b}",
        f"Article 1. Services and delivery. Party B shall provide Party A with the {f.service} and shall complete all deliverables within {f.delivery_days} days of the effective date of this Contract.",
        f"Article 2. Payment terms. The total contract amount is USD {f.amount:,}. Party A shall pay {f.advance_percent}% of the total amount as an advance within ten days of signing, and the balance within thirty days of acceptance.",
        f"Article 3. Liability for breach. If Party B delays delivery, it shall pay Party A liquidated damages of {f.penalty_per_mille} per mille of the total contract amount for each day of delay.",
        f"Article 4. Termination. Either party may terminate this Contract by giving {f.notice_days} days' written notice to the other party; if a party materially breaches this Contract and fails to cure the breach after notice, the other party may terminate it immediately.",
    ]


def contract_text(facts: ContractFacts, target_chars: int, rng: random.Random) -> str:
    """The key clauses spread through boilerplate until the text is about target_chars long."""
    key = _key_clauses(facts)
    filler = _BOILERPLATE[facts.language]
    body: list[str] = []
    n = 0
    while sum(map(len, key + body)) < target_chars:
        clause = filler[n % len(filler)]
        body.append(f"({n + 1}) {clause}" if facts.language == "en" else f"（{n + 1}）{clause}")
        n += 1
    # the header first, then each key clause at a different depth of the document
    slots = sorted(rng.sample(range(len(body) + 1), len(key) - 1))
    out = [key[0]]
    last = 0
    for clause, slot in zip(key[1:], slots):
        out += body[last:slot] + [clause]
        last = slot
    out += body[last:]
    return "\n".join(out)


def write_pdf(text: str, path: Path, language: str) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    font = "Helvetica"
    if language == "zh":
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
        font = "STSong-Light"
    style = ParagraphStyle(
        "body", fontName=font, fontSize=10.5, leading=15, wordWrap="CJK" if language == "zh" else None
    )
    story = [Paragraph(line.replace("&", "&amp;").replace("<", "&lt;"), style) for line in text.split("\n")]
    SimpleDocTemplate(str(path), pagesize=A4, title="contract").build(story)


def write_docx(text: str, path: Path) -> None:
    import docx

    document = docx.Document()
    for line in text.split("\n"):
        document.add_paragraph(line)
    document.save(str(path))


def make_eval_set(folder: str | Path, count: int = 10, seed: int = 7) -> list[dict]:
    """`count` contracts alternating Chinese and English, 3,000-12,000 characters, each as PDF and
    DOCX, with a manifest of their facts (facts.json). Returns the manifest entries."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    entries = []
    for i in range(count):
        language = "zh" if i % 2 == 0 else "en"
        target = 3000 + (9000 * i) // max(1, count - 1)
        facts = _facts(rng, language)
        text = contract_text(facts, target, rng)
        stem = f"contract-{i:02d}-{language}"
        write_pdf(text, folder / f"{stem}.pdf", language)
        write_docx(text, folder / f"{stem}.docx")
        entries.append({"stem": stem, "chars": len(text), "facts": asdict(facts)})
    (folder / "facts.json").write_text(json.dumps(entries, ensure_ascii=False, indent=2))
    return entries


def make_contract(path: str | Path, language: str = "zh", chars: int = 12_000, seed: int = 1) -> ContractFacts:
    """One contract of about `chars` characters, as PDF or DOCX by the path's suffix."""
    path = Path(path)
    rng = random.Random(seed)
    facts = _facts(rng, language)
    text = contract_text(facts, chars, rng)
    if path.suffix == ".pdf":
        write_pdf(text, path, language)
    elif path.suffix == ".docx":
        write_docx(text, path)
    else:
        path.write_text(text, encoding="utf-8")
    return facts


def expected(facts: dict) -> dict[str, list[str]]:
    """For each contract field, the strings a correct answer contains (any spelling listed)."""
    amount = facts["amount"]
    return {
        "parties": [facts["party_a"], facts["party_b"]],
        "services_and_delivery": [str(facts["delivery_days"])],
        "payment_terms": [f"{amount:,}"],  # commas and spaces are ignored when comparing
        "liability_for_breach": [str(facts["penalty_per_mille"])],
        "termination_conditions": [str(facts["notice_days"])],
    }


def _contains(text: str, needles: list[str]) -> bool:
    squeeze = lambda s: s.replace(" ", "").replace(",", "").lower()  # noqa: E731
    return all(squeeze(n) in squeeze(text) for n in needles)


class DocqaEvalReport(Exportable, dict):
    """evaluate's result, a plain dict: summary (all, zh, en), per_field, rows, verified_marks_wrong."""

    def as_dict(self) -> dict:
        return dict(self)

    def csv_rows(self) -> tuple[list[str], list[list]]:
        header = list(self["rows"][0]) if self["rows"] else ["document", "field"]
        return header, [[r[k] for k in header] for r in self["rows"]]

    def _summary_rows(self) -> list[list]:
        return [
            [
                key,
                s["fields"],
                f"{s['value_accuracy']:.0%}",
                f"{s['quote_accuracy']:.0%}",
                f"{s['verified_share']:.0%}",
                f"{s['supported_share']:.0%}",
                f"{s['answer_accuracy']:.0%}",
            ]
            for key, s in self["summary"].items()
        ]

    def to_markdown(self) -> str:
        rows = [
            "| set | fields | value acc. | quote acc. | verified | supported | answer acc. |",
            "|---|---|---|---|---|---|---|",
        ] + ["| " + " | ".join(map(str, r)) + " |" for r in self._summary_rows()]
        return "\n".join(rows) + f"\n\nverified marks that were wrong: {self['verified_marks_wrong']}"

    def to_text(self) -> str:
        lines = [
            f"{'set':<5} {'fields':>6} {'value acc.':>10} {'quote acc.':>10} {'verified':>9} {'supported':>9} "
            f"{'answer acc.':>11}"
        ]
        lines += [
            f"{r[0]:<5} {r[1]:>6} {r[2]:>10} {r[3]:>10} {r[4]:>9} {r[5]:>9} {r[6]:>11}" for r in self._summary_rows()
        ]
        return "\n".join(lines + [f"verified marks that were wrong: {self['verified_marks_wrong']}"])


def evaluate(
    client,
    folder: str | Path,
    formats: tuple[str, ...] = ("pdf",),
    limit: int | None = None,
    on_row=None,
    count: int = 10,
) -> DocqaEvalReport:
    """Run the contract template over the eval set in `folder` (made there first, with `count` contracts, when
    it holds none); score each field's value and quote against the known facts, and count verified quotes and
    supported values. Verified means the quote is in the document; supported, that the value's facts are in
    the quote (then the answer shown is the value, else the quote)."""
    folder = Path(folder)
    if not (folder / "facts.json").is_file():
        make_eval_set(folder, count=count)
    entries = json.loads((folder / "facts.json").read_text())[:limit]
    rows = []
    for entry in entries:
        for fmt in formats:
            document = documents.load(folder / f"{entry['stem']}.{fmt}")
            answer = docqa.ask(client, document, "contract")
            want = expected(entry["facts"])
            for field in answer.fields:
                rows.append(
                    {
                        "document": f"{entry['stem']}.{fmt}",
                        "language": entry["facts"]["language"],
                        "chars": entry["chars"],
                        "strategy": answer.strategy,
                        "field": field.name,
                        "value_correct": _contains(field.value, want[field.name]),
                        "quote_correct": _contains(field.quote, want[field.name]),
                        "verified": field.verified,
                        "supported": field.supported,
                        "checked": field.checked,
                        "answer_correct": _contains(field.answer, want[field.name]),
                        "verified_and_in_text": field.verified
                        == (documents.find_quote(document, field.quote) is not None),
                        "seconds": round(answer.total_s, 1),
                    }
                )
                if on_row:
                    on_row(rows[-1])
    summary = {}
    for key in ("all", "zh", "en"):
        sel = [r for r in rows if key == "all" or r["language"] == key]
        if sel:
            summary[key] = {
                "fields": len(sel),
                "value_accuracy": round(sum(r["value_correct"] for r in sel) / len(sel), 3),
                "quote_accuracy": round(sum(r["quote_correct"] for r in sel) / len(sel), 3),
                "verified_share": round(sum(r["verified"] for r in sel) / len(sel), 3),
                "supported_share": round(sum(r["supported"] for r in sel) / len(sel), 3),
                "checked_and_supported": sum(r["checked"] and r["supported"] for r in sel),
                "checked_supported_and_correct": sum(
                    r["checked"] and r["supported"] and r["value_correct"] for r in sel
                ),
                "unsupported": sum(not r["supported"] for r in sel),
                "unsupported_but_correct": sum(not r["supported"] and r["value_correct"] for r in sel),
                "answer_accuracy": round(sum(r["answer_correct"] for r in sel) / len(sel), 3),
            }
    per_field = {}
    for name in expected(entries[0]["facts"]) if entries else ():
        sel = [r for r in rows if r["field"] == name]
        per_field[name] = {
            "value_accuracy": round(sum(r["value_correct"] for r in sel) / len(sel), 3),
            "quote_accuracy": round(sum(r["quote_correct"] for r in sel) / len(sel), 3),
        }
    return DocqaEvalReport(
        summary=summary,
        per_field=per_field,
        rows=rows,
        verified_marks_wrong=sum(not r["verified_and_in_text"] for r in rows),
    )
