"""FX importers: FRED daily series, the Upbit KRW-USDT daily candles and the ECB reference
rate carried in the same file. Each rate is stamped when it was observable, never at the
start of the day it is filed under:

- FRED H.10 (``DEXKOUS``): the noon buying rate in New York, stamped 12:00 America/New_York.
- Upbit KRW-USDT day candle (00:00-24:00 UTC): its close, stamped at the bar's end.
- ECB euro reference rates (via Frankfurter): fixed ~14:15 CET and published ~16:00 CET,
  stamped 16:00 Europe/Berlin (publication: the earliest a backtest may use it).
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from arbkit.data.importers.common import SHARED_REAL, need_columns, need_file, read_csv
from arbkit.errors import DataError

_FX_COLUMNS = ["ts_ns", "venue", "symbol", "base", "quote", "rate"]


def _at_local(days: pl.Series, clock: time, tz: str) -> pl.Series:
    """Epoch ns of ``clock`` local time on each date (DST-aware)."""
    zone = ZoneInfo(tz)
    out = [int(datetime.combine(d, clock, zone).timestamp()) * 1_000_000_000 for d in days]
    return pl.Series("ts_ns", out, dtype=pl.Int64)


def _frame(ts: pl.Series, rate: pl.Series, venue: str, base: str, quote: str) -> pl.DataFrame:
    n = ts.len()
    return pl.DataFrame({
        "ts_ns": ts, "venue": [venue] * n, "symbol": [f"{base}/{quote}"] * n,
        "base": [base] * n, "quote": [quote] * n, "rate": rate.cast(pl.Float64),
    }).select(_FX_COLUMNS)


def read_fred_csv(path: str | Path | None = None, *, base: str = "USD", quote: str = "KRW",
                  value_column: str | None = None) -> pl.DataFrame:
    """A FRED daily CSV (``date,<value>``; blank = no fixing that day, dropped).

    Default: the shared ``krw-fx/fred_DEXKOUS_1d_*.csv.gz`` (KRW per 1 USD).
    """
    p = need_file(path or next((SHARED_REAL / "krw-fx").glob("fred_DEXKOUS_1d_*.csv.gz")),
                  "fred import")
    raw = read_csv(p, infer_schema_length=0)  # all text: blanks and "." are holidays
    col = value_column or raw.columns[-1]
    if "date" not in raw.columns or col not in raw.columns:
        raise DataError(f"{p}: columns={raw.columns}: a FRED CSV has date,<value>; pass "
                        "value_column= for the rate column")
    kept = raw.filter(pl.col(col).str.strip_chars().is_in(["", "."]).not_()
                      & pl.col(col).is_not_null())
    rate = _numbers(kept, col, "date", p, "a FRED CSV holds a rate, or '.' or a blank on days "
                    "without a fixing")
    days = _dates(kept, "date", p)
    return _frame(_at_local(days, time(12, 0), "America/New_York"), rate, "fred", base, quote)


def _numbers(raw: pl.DataFrame, col: str, key: str, path: Path, what: str) -> pl.Series:
    """A column as float64; text that is not a number is one line naming the value, its row
    and what the file should hold."""
    s = raw.get_column(col)
    out = s.cast(pl.Float64, strict=False) if s.dtype == pl.String else s.cast(pl.Float64)
    bad = out.is_null() & s.is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise DataError(f"{path}: {col}={s[i]!r} on {key}={raw[i, key]!r} (row {i + 2}) is not "
                        f"a number; {what}: fix or drop that row")
    return out


def _dates(raw: pl.DataFrame, col: str, path: Path) -> pl.Series:
    s = raw.get_column(col)
    if isinstance(s.dtype, pl.Date):
        return s
    out = s.cast(pl.String).str.to_date("%Y-%m-%d", strict=False)
    bad = out.is_null() & s.is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise DataError(f"{path}: {col}={s[i]!r} (row {i + 2}) is not a date; write it as "
                        "YYYY-MM-DD")
    return out


def read_upbit_krw_usdt(path: str | Path | None = None) -> pl.DataFrame:
    """Upbit KRW-USDT daily closes (KRW per 1 USDT), stamped at each day candle's end."""
    p = need_file(path or next((SHARED_REAL / "krw-fx").glob("upbit_KRW-USDT_1d_*.csv.gz")),
                  "upbit krw-usdt import")
    raw = read_csv(p)
    need_columns(raw, ["date_utc", "close_krw_per_usdt"], p,
                 "krw-fx upbit_KRW-USDT_1d_*.csv.gz file (Upbit KRW-USDT day candles)")
    days = _dates(raw, "date_utc", p)
    close_ns = _at_local(days, time(0, 0), "UTC") + 86_400_000_000_000
    rate = _numbers(raw, "close_krw_per_usdt", "date_utc", p, "the close is KRW per 1 USDT")
    return _frame(close_ns, rate, "upbit", "USDT", "KRW")


def read_ecb_usd_krw(path: str | Path | None = None) -> pl.DataFrame:
    """ECB-based USD/KRW from the same file, only on days the ECB published, stamped at
    publication (16:00 Europe/Berlin)."""
    p = need_file(path or next((SHARED_REAL / "krw-fx").glob("upbit_KRW-USDT_1d_*.csv.gz")),
                  "ecb usd-krw import")
    raw = read_csv(p)
    need_columns(raw, ["date_utc", "fx_ecb_published", "fx_usdkrw_ecb"], p,
                 "krw-fx upbit_KRW-USDT_1d_*.csv.gz file (it carries the ECB rate)")
    raw = raw.filter(pl.col("fx_ecb_published") == 1)
    days = _dates(raw, "date_utc", p)
    rate = _numbers(raw, "fx_usdkrw_ecb", "date_utc", p, "the ECB rate is KRW per 1 USD")
    return _frame(_at_local(days, time(16, 0), "Europe/Berlin"), rate, "ecb", "USD", "KRW")


def fx_at(fx: pl.DataFrame, ts_ns: int) -> float:
    """The last rate observable at ``ts_ns`` (NaN before the first)."""
    before = fx.filter(pl.col("ts_ns") <= ts_ns)
    return float(before.get_column("rate")[-1]) if before.height else float("nan")
