"""Reading an SIS import upload the way Canvas does: unzip, detect each file's type from its header,
check UTF-8 and CSV well-formedness, and keep every row with its line number for error reports."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field

from canvas.csv_formats import detect_kind

# Canvas's IGNORE_FILES pattern (lib/sis/csv/import.rb), applied to the entry name.
IGNORE_FILES = re.compile(r"__macosx|desktop d[bf]|\A\..*", re.IGNORECASE)
# Canvas refuses a zip whose contents are over 100x its own size (a zip bomb guard).
MAX_EXPANSION = 100
MAX_UPLOAD_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Message:
    """One entry of processing_warnings / processing_errors and of the errors endpoint."""

    file: str | None
    message: str
    failure: bool = False
    row: int | None = None
    row_info: str | None = None


@dataclass
class CsvRow:
    line: int
    values: dict[str, str]
    raw: str


@dataclass
class ParsedFile:
    name: str
    kind: str
    header: list[str]
    rows: list[CsvRow]
    size: int
    content: bytes = b""


@dataclass
class Upload:
    files: list[ParsedFile] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    # The uncompressed size (SisBatch#compute_file_size: CanvasUnzip.compute_uncompressed_size, or the
    # file's own size when it is not a zip); diffing's change_threshold compares these.
    uncompressed_size: int = 0


def _raw_line(record: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(record)
    return buffer.getvalue()


def parse_csv(name: str, content: bytes, upload: Upload) -> None:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        upload.messages.append(Message(name, "Invalid UTF-8", failure=True))
        return
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header: list[str] | None = None
        rows: list[CsvRow] = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # Canvas parses with skip_blanks
            if header is None:
                header = [h.strip().lower() for h in record]
                continue
            values = {h: (record[i].strip() if i < len(record) else "") for i, h in enumerate(header)}
            rows.append(CsvRow(reader.line_num, values, _raw_line(record)))
    except csv.Error:
        upload.messages.append(Message(name, "Malformed CSV", failure=True))
        return
    if header is None:
        return  # Canvas skips empty files without a word
    kind = detect_kind(header)
    if kind is None:
        upload.messages.append(Message(name, "Couldn't find Canvas CSV import headers", failure=True))
        return
    upload.files.append(ParsedFile(name, kind, header, rows, len(content), content))


def read_upload(content: bytes, extension: str, name: str = "sis_import.csv") -> Upload:
    """Parse a zip or a single CSV. Problems become Canvas-worded messages, never exceptions."""
    upload = Upload()
    if len(content) > MAX_UPLOAD_BYTES:
        upload.messages.append(Message(None, "The file is too large to import", failure=True))
        return upload
    if extension == "csv" or content[:4] != b"PK\x03\x04":
        upload.uncompressed_size = len(content)
        parse_csv(name, content, upload)
        return upload
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        entries = [i for i in archive.infolist() if not i.is_dir()]
        upload.uncompressed_size = sum(i.file_size for i in entries)
        if sum(i.file_size for i in entries) > MAX_EXPANSION * max(len(content), 1):
            upload.messages.append(Message(None, "Uncompressed size exceeds the allowed limit", failure=True))
            return upload
        for info in entries:
            base = info.filename.rsplit("/", 1)[-1]
            if IGNORE_FILES.search(info.filename) or IGNORE_FILES.match(base):
                continue
            if not info.filename.lower().endswith(".csv"):
                upload.messages.append(Message(info.filename, "Skipping unknown file type"))
                continue
            parse_csv(info.filename, archive.read(info), upload)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError):
        upload.messages.append(Message(None, "Invalid zip file", failure=True))
    return upload
