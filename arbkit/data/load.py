"""Read canonical ``quotes`` Parquet files into a validated polars frame.

Every failure is a one-line :class:`~arbkit.errors.DataError` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import polars as pl

from arbkit.data.validate import ValidationReport, conform_quotes, validate_quotes
from arbkit.errors import DataError

# Exceptions a damaged file can raise from the Parquet reader (PanicException is a
# BaseException in polars, so it has to be named).
_READ_ERRORS: tuple[type[BaseException], ...] = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
    OSError,
    ValueError,
)


def parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files a path stands for: itself, or a folder's ``*.parquet`` by name.

    Parameters
    ----------
    path : str or Path
        A Parquet file, or a folder holding ``*.parquet`` files (not searched recursively).

    Returns
    -------
    list[Path]
        Files sorted by name.

    Raises
    ------
    DataError
        The path does not exist, or the folder holds no Parquet file.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: path does not exist (cwd {Path.cwd()}); check the path")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.glob("*.parquet") if f.is_file())
    if not files:
        seen = sorted(f.name for f in p.iterdir())[:5]
        raise DataError(
            f"{p}: folder holds no *.parquet file (found {seen}); point at a "
            "Parquet file or a folder of them"
        )
    return files


def sniff(file: str | Path) -> tuple[str, str] | None:
    """What a file that failed to read as Parquet is instead, and the fix, or None when it
    starts as Parquet (then it is damaged or cut short)."""
    try:
        with Path(file).open("rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if head.startswith(b"PAR1"):
        return None
    if head.startswith(b"\x1f\x8b"):
        return ("it is gzip-compressed (a .csv.gz?)", _import_csv(file))
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive", "unzip it first"
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "it has no Parquet header", "re-export it as Parquet"
    first = text.splitlines()[0][:60] if text.strip() else ""
    if text.lstrip().startswith(("{", "[")):
        return f"it is JSON text (starts {first!r})", "convert it to Parquet first"
    return (f"it is text (starts {first!r})", _import_csv(file))


def _import_csv(file: str | Path) -> str:
    """The fix for a CSV given where Parquet is read: the command that imports it."""
    import shlex

    return ("a CSV is imported into the catalog with a CSV format: `arbkit data import csv "
            f"{shlex.quote(str(file))} --map mapping.toml` (a mapping.toml of one line, "
            'kind = "quotes", when its columns have arbkit\'s names; docs/data.md "Generic '
            'CSV"; `arbkit data formats` lists the others), then pass the catalog: --data data')


def not_parquet(file: str | Path, exc: BaseException, fix: str = "re-export it") -> DataError:
    """The one-line error for a file that does not read as Parquet: what it is instead
    (CSV text, gzip, ...) and its fix, or a damaged Parquet file and ``fix``."""
    found = sniff(file)
    if found is not None:
        what, how = found
        return DataError(f"cannot read {file}: {what}, not a Parquet file; {how}")
    reason = " ".join(str(exc).split())[:160]
    return DataError(f"cannot read {file}: not a valid Parquet file (truncated?); {fix} "
                     f"[{type(exc).__name__}: {reason}]")


def read_file(file: Path) -> pl.DataFrame:
    """One Parquet file as it is (no validation); a clear error if it is empty or damaged."""
    if file.stat().st_size == 0:
        raise DataError(f"{file}: file is empty (0 bytes); re-export it")
    try:
        return pl.read_parquet(file)
    except _READ_ERRORS as exc:
        raise not_parquet(file, exc) from exc


def read_quotes(path: str | Path) -> tuple[pl.DataFrame, ValidationReport]:
    """Read, conform and validate quotes from a Parquet file or a folder of them.

    Files of a folder are read in name order and concatenated (depth columns a file lacks
    become NaN, "no level"). Each file is cast to the canonical dtypes on its own, so a
    dtype fault names its file; row faults of the concatenation name file and row too.

    Parameters
    ----------
    path : str or Path
        A Parquet file or a folder of ``*.parquet`` files.

    Returns
    -------
    tuple[polars.DataFrame, ValidationReport]
        The validated frame (canonical dtypes, ``ts_exch_ns`` null where absent, boolean
        ``crossed`` column) and the report.

    Raises
    ------
    DataError
        Missing path, empty folder, empty or corrupt file, or any validation failure.

    Examples
    --------
    >>> df, rep = read_quotes("data/samples/binance_btcusdt_spot_usdm.parquet")  # doctest: +SKIP
    >>> rep.n_instruments  # doctest: +SKIP
    2
    """
    files = parquet_files(path)
    frames = [conform_quotes(read_file(f), str(f)) for f in files]
    if len(frames) == 1:
        df, warnings = frames[0]
        parts: list[tuple[str, int]] = []
    else:
        df = pl.concat([f for f, _ in frames], how="diagonal_relaxed")
        warnings = [w for _, ws in frames for w in ws]
        parts = [(f.name, fr.height) for f, (fr, _) in zip(files, frames)]
    report = validate_quotes(df, str(path), parts=parts)
    report = replace(report, warnings=warnings + report.warnings)
    return report.frame, report


def manifest_hash(paths: str | Path | Iterable[str | Path]) -> str:
    """SHA-256 over the bytes of a data set's files, for run provenance.

    Folders expand to their ``*.parquet`` files. Files are taken in name order and each
    contributes its name (not its folder, so moving the data keeps the hash), its size and
    the SHA-256 of its bytes (streamed by ``hashlib.file_digest``, never loaded whole).

    Parameters
    ----------
    paths : path or iterable of paths
        Files and/or folders.

    Returns
    -------
    str
        Hex digest.

    Examples
    --------
    >>> manifest_hash("data/samples/binance_btcusdt_spot_usdm.parquet")[:8]  # doctest: +SKIP
    '…'
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files = sorted({f for p in items for f in parquet_files(p)}, key=lambda f: (f.name, str(f)))
    outer = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            inner = hashlib.file_digest(fh, "sha256")
        outer.update(f"{f.name}\0{f.stat().st_size}\0".encode())
        outer.update(inner.digest())
    return outer.hexdigest()
