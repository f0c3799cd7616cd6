"""export.py writes a result as the files people open: JSON, CSV and Markdown, with one writer for all.

A result says what it is in each form, and nothing more: `as_dict()` (its JSON), `csv_rows()` (a header and
the rows a spreadsheet wants) and `to_markdown()` (what a person reads; a notebook shows it too), and, where a
page says more than Markdown can, `to_html()` (a self-contained page). `Exportable.save(folder, stem)` writes
`stem.json`, `stem.csv`, `stem.md` (and `stem.html`) and returns their paths. The CLI's `--save`, the tabs'
downloads and the bench scripts all call it. Knows nothing about what the results mean.
"""

import csv
import io
import json
from pathlib import Path

FORMATS = ("json", "csv", "md", "html")


class Exportable:
    """Mixin for results: implement as_dict, csv_rows and to_markdown; get to_json, to_csv and save."""

    def as_dict(self) -> dict:
        raise NotImplementedError

    def csv_rows(self) -> tuple[list[str], list[list]]:
        raise NotImplementedError

    def to_markdown(self) -> str:
        raise NotImplementedError

    def to_html(self) -> str | None:
        """A self-contained HTML page, for results that have one (None: no page)."""
        return None

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=2, default=str) + "\n"

    def to_csv(self) -> str:
        header, rows = self.csv_rows()
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
        return out.getvalue()

    def save(self, folder: str | Path, stem: str, names: dict[str, str] | None = None) -> dict[str, Path]:
        """`folder/stem.json`, `.csv`, `.md` and, where there is a page, `.html` (the folder is made if missing):
        {"json": path, ...}. `names` renames a kind's file ({"json": "compare.json"})."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        texts = {
            "json": self.to_json(),
            "csv": self.to_csv(),
            "md": self.to_markdown().rstrip() + "\n",
            "html": self.to_html(),
        }
        paths = {}
        for kind in FORMATS:
            if texts[kind] is None:
                continue
            paths[kind] = folder / (names or {}).get(kind, f"{stem}.{kind}")
            paths[kind].write_text(texts[kind], encoding="utf-8")
        return paths

    def _repr_markdown_(self) -> str:  # a notebook shows the result, not the object
        return self.to_markdown()
