"""documents.py turns files into text with page numbers: PDF (pypdf), DOCX (python-docx), TXT,
Markdown and HTML, Chinese and English. Every file it cannot read gets a DocumentError that says
why and what to do. It knows nothing about models or prompts."""

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import DocumentError

MAX_BYTES = 20 * 2**20
FORMATS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".txt": "txt",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
}


@dataclass(frozen=True)
class Page:
    number: int  # 1-based; formats without pages have one page
    text: str
    start: int  # offset of this page's first character in Document.text


@dataclass(frozen=True)
class Document:
    name: str
    format: str
    text: str
    pages: tuple[Page, ...]

    @property
    def chars(self) -> int:
        return len(self.text)

    def page_of(self, offset: int) -> int | None:
        for page in reversed(self.pages):
            if offset >= page.start:
                return page.number
        return None


def _join(name: str, fmt: str, page_texts: list[str]) -> Document:
    pages, parts, offset = [], [], 0
    for number, text in enumerate(page_texts, 1):
        pages.append(Page(number, text, offset))
        parts.append(text)
        offset += len(text) + 2
    text = "\n\n".join(parts)
    if not text.strip():
        raise DocumentError(f"{name} contains no text. Fix: check that it is the right file.")
    return Document(name, fmt, text, tuple(pages))


def load(path: str | Path, max_bytes: int = MAX_BYTES) -> Document:
    """Read a file into a Document, or raise DocumentError with the fix."""
    path = Path(path)
    if not path.is_file():
        raise DocumentError(f"{str(path)!r} does not exist or is not a file.")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DocumentError(
            f"{path.name}: the type {path.suffix or '(none)'!r} is not supported. "
            f"Valid: {', '.join(sorted(FORMATS))}. Fix: save it as PDF, DOCX or text."
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentError(
            f"{path.name} is {size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB. "
            "Fix: split the document, or extract the part you need."
        )
    if size == 0:
        raise DocumentError(f"{path.name} is empty (0 bytes).")
    return {"pdf": _pdf, "docx": _docx, "txt": _text, "markdown": _text, "html": _html}[fmt](path, fmt)


def _pdf(path: Path, fmt: str) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise DocumentError(
                f"{path.name} is encrypted. Fix: open it with its password and save an unprotected copy."
            )
        texts = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError, TypeError) as exc:
        raise DocumentError(f"{path.name} is not a readable PDF ({exc}). Fix: re-export it from its source.") from exc
    if not reader.pages:
        raise DocumentError(f"{path.name} has no pages.")
    if not "".join(texts).strip():
        raise DocumentError(
            f"{path.name} has {len(texts)} page(s) but no text layer: it looks scanned. "
            "Fix: run OCR on it first (for example ocrmypdf), then upload the result."
        )
    return _join(path.name, fmt, [t.strip() for t in texts])


def _docx(path: Path, fmt: str) -> Document:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, PackageNotFoundError) as exc:
        raise DocumentError(
            f"{path.name} is not a readable DOCX ({exc}). Fix: re-save it from Word or LibreOffice."
        ) from exc
    paragraphs = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            paragraphs.append(" | ".join(cell.text for cell in row.cells))
    return _join(path.name, fmt, ["\n".join(p for p in paragraphs if p.strip())])


def _text(path: Path, fmt: str) -> Document:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return _join(path.name, fmt, [raw.decode(encoding)])
        except UnicodeDecodeError:
            continue
    raise DocumentError(f"{path.name} is neither UTF-8 nor GB18030 text. Fix: save it as UTF-8.")


def _html(path: Path, fmt: str) -> Document:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    text = re.sub(r"\n\s*\n+", "\n\n", soup.get_text("\n"))
    return _join(path.name, fmt, [text.strip()])


def normalize(text: str) -> str:
    """Whitespace-insensitive form used to check that a quote occurs in a document."""
    return re.sub(r"\s+", "", text)


def find_quote(document: Document, quote: str) -> int | None:
    """Offset of `quote` in the document, ignoring whitespace (PDF extraction moves line breaks); None if absent."""
    needle = normalize(quote)
    if len(needle) < 2:
        return None
    squeezed, index = [], []
    for i, ch in enumerate(document.text):
        if not ch.isspace():
            squeezed.append(ch)
            index.append(i)
    at = "".join(squeezed).find(needle)
    return index[at] if at >= 0 else None
