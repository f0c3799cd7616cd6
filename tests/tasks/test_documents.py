"""Text out of files the tests make: every format, Chinese and English, and every bad file."""

import pytest

from workbench.errors import DocumentError
from workbench.tasks import docqa_dataset, documents


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    zh = docqa_dataset.make_contract(folder / "zh.pdf", "zh", 6000, seed=3)
    docqa_dataset.make_contract(folder / "zh.docx", "zh", 6000, seed=3)
    en = docqa_dataset.make_contract(folder / "en.pdf", "en", 4000, seed=4)
    (folder / "notes.md").write_text("# Minutes\n\nDecided: ship on **Friday**.\n", encoding="utf-8")
    (folder / "page.html").write_text(
        "<html><head><style>p{}</style><script>var x=1</script></head>"
        "<body><h1>标题</h1><p>第一段。</p><p>Second paragraph.</p></body></html>",
        encoding="utf-8",
    )
    (folder / "gbk.txt").write_bytes("甲方：杭州云帆科技有限公司".encode("gb18030"))
    return folder, zh, en


def test_chinese_pdf_keeps_text_and_pages(made):
    folder, zh, _ = made
    doc = documents.load(folder / "zh.pdf")
    assert doc.format == "pdf" and len(doc.pages) >= 2
    assert documents.normalize(zh.party_a) in documents.normalize(doc.text)
    at = documents.find_quote(doc, f"本合同总金额为人民币{zh.amount:,}元")
    assert at is not None and doc.page_of(at) >= 1


def test_docx_and_pdf_give_the_same_text(made):
    folder, zh, _ = made
    pdf, docx = documents.load(folder / "zh.pdf"), documents.load(folder / "zh.docx")
    assert documents.normalize(pdf.text) == documents.normalize(docx.text)


def test_english_pdf(made):
    folder, _, en = made
    doc = documents.load(folder / "en.pdf")
    assert en.party_b in doc.text.replace("\n", " ") and 3500 < doc.chars < 4800


def test_markdown_html_and_gb18030_text(made):
    folder, _, _ = made
    assert "Friday" in documents.load(folder / "notes.md").text
    html = documents.load(folder / "page.html").text
    assert "第一段。" in html and "Second paragraph." in html and "var x" not in html
    assert documents.load(folder / "gbk.txt").text == "甲方：杭州云帆科技有限公司"


def test_quotes_are_found_across_line_breaks_and_fabrications_are_not(made):
    folder, zh, _ = made
    doc = documents.load(folder / "zh.pdf")
    real = f"乙方逾期交付的，每逾期一日，应按合同总金额的千分之{zh.penalty_per_mille}向甲方支付违约金。"
    assert documents.find_quote(doc, real) is not None  # PDF wraps it over lines
    assert documents.find_quote(doc, real.replace("千分之", "百分之")) is None
    assert documents.find_quote(doc, "乙方应赔偿甲方全部损失。") is None
    assert documents.find_quote(doc, "") is None


def _bad_files(folder):
    from pypdf import PdfWriter
    from reportlab.pdfgen import canvas

    encrypted = PdfWriter()
    encrypted.add_blank_page(200, 200)
    encrypted.encrypt("secret")
    with open(folder / "locked.pdf", "wb") as f:
        encrypted.write(f)
    scanned = canvas.Canvas(str(folder / "scanned.pdf"))
    scanned.rect(50, 50, 200, 300, fill=1)  # a page with a picture-like shape and no text layer
    scanned.save()
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_text("   \n\n  ")
    (folder / "big.txt").write_text("x" * 2048)
    (folder / "table.xlsx").write_bytes(b"PK")
    (folder / "broken.docx").write_bytes(b"not a zip")


@pytest.mark.parametrize(
    "name, words",
    [
        ("locked.pdf", ["encrypted", "password"]),
        ("scanned.pdf", ["no text layer", "OCR"]),
        ("corrupt.pdf", ["not a readable PDF", "re-export"]),
        ("empty.txt", ["empty"]),
        ("blank.txt", ["no text"]),
        ("table.xlsx", ["'.xlsx'", ".pdf", ".docx"]),
        ("broken.docx", ["not a readable DOCX", "re-save"]),
        ("missing.pdf", ["does not exist"]),
    ],
)
def test_bad_files_get_their_own_error(tmp_path, name, words):
    _bad_files(tmp_path)
    with pytest.raises(DocumentError) as info:
        documents.load(tmp_path / name)
    for word in words:
        assert word in str(info.value)


def test_over_size(tmp_path):
    _bad_files(tmp_path)
    with pytest.raises(DocumentError, match="the limit is"):
        documents.load(tmp_path / "big.txt", max_bytes=1024)
