"""Word files: body paragraphs and table rows in document order (python-docx).
Headings are short lines of their own, which the segmenter takes as titles."""
from __future__ import annotations

import zipfile
from pathlib import Path

from ..clean import UnreadableFileError
from ..types import Document


def load(path: Path) -> Document:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableFileError(f"{path.name}: not a readable Word (.docx) file ({exc}); open and save it again in Word") from exc
    lines = []
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):  # a table: one line per row
            for row in block.rows:
                lines.append(" ".join(dict.fromkeys(cell.text.strip() for cell in row.cells if cell.text.strip())))
        else:
            lines += block.text.splitlines()
    return Document("\n".join(line.strip() for line in lines if line.strip()))
