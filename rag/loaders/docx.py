"""Word files: body paragraphs and table rows in document order (python-docx).
Headings are short lines of their own, which the segmenter takes as titles."""
from __future__ import annotations

import zipfile
from pathlib import Path

from . import too_large
from .decode import UnreadableFileError
from ..types import Document


def load(path: Path, max_mb: float) -> Document:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from lxml.etree import XMLSyntaxError

    try:
        with zipfile.ZipFile(path) as package:  # sizes as declared: zipfile never inflates past them
            unpacked = sum(member.file_size for member in package.infolist())
        document = docx.Document(str(path)) if unpacked <= max_mb * 2**20 else None
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as exc:
        raise UnreadableFileError(f"{path.name}: not a readable Word (.docx) file ({exc}); open and save it again in Word") from exc
    if document is None:
        raise UnreadableFileError(too_large(path.name, f"unpacks to {unpacked / 2**20:,.0f} MB", max_mb))
    lines = []
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):  # a table: one line per row
            for row in block.rows:
                lines.append(" ".join(dict.fromkeys(cell.text.strip() for cell in row.cells if cell.text.strip())))
        else:
            lines += block.text.splitlines()
    created = document.core_properties.created  # python-docx gives None when the file says nothing
    return Document("\n".join(line.strip() for line in lines if line.strip()), date=created.date().isoformat() if created else "")
