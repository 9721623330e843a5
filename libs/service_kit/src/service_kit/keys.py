"""Keys from the environment: a PEM given inline (a Secret as a variable) or as a file."""

from __future__ import annotations

from pathlib import Path


def read_pem(*, pem: str | None, file: Path | None, what: str, variable: str) -> str:
    """The PEM in ``variable``, else in ``variable``_FILE; a clear error naming both if neither."""
    if pem:
        return pem
    if file is not None and file.is_file():
        return file.read_text()
    raise RuntimeError(
        f"no {what}: set {variable} (a PEM) or {variable}_FILE (now {file});"
        " on a laptop, `make setup` creates one"
    )
