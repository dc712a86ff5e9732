"""Write notebooks/quickstart.ipynb and notebooks/tuning.ipynb (kept as code here, so a diff
shows what changed). Executed end to end by tests/integration/test_notebooks.py.

    .venv/bin/python scripts/make_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

QUICKSTART = [
    ("md", "# arbkit quickstart\n\nLoad real data, backtest a cross-venue route, look at the "
           "trades and the equity. Run from the repository root (the test does)."),
    ("code", "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
             "import polars as pl\nimport arbkit"),
    ("md", "## Real data: Binance BTCUSDT spot vs the USD-M perpetual (shipped sample)\n\n"
           "The config uses a HYPOTHETICAL 0.5 bps fee tier (see its header): with real fees "
           "this route does not trade."),
    ("code", "res = arbkit.backtest('data/samples/binance_btcusdt_spot_usdm.parquet',\n"
             "                      'studies/binance_spot_usdm_hypothetical_fees.toml')\n"
             "res.summary.filter(pl.col('metric').is_in(['trades', 'win_rate', 'net_pnl', "
             "'price_pnl', 'slippage', 'fees', 'max_drawdown']))"),
    ("code", "res.meta['notes']  # the too-good / too-bad checks and data notes"),
    ("md", "## A busier market: the synthetic `normal` scenario"),
    ("code", "from arbkit.data.synth import write_scenario\n"
             "d = write_scenario('normal', 'out/notebook-normal')\n"
             "res = arbkit.backtest(d / 'quotes.parquet', d / 'config.toml')\n"
             "res.trades.select('trade_id', 'dir', 'exit_reason_text', 'net_pnl', 'price_pnl',"
             " 'slippage', 'fees').head(8)"),
    ("code", "res.trades.group_by('exit_reason_text').agg(pl.len().alias('n'), "
             "pl.col('net_pnl').sum()).sort('n', descending=True)"),
    ("code", "eq = res.equity\nfig, ax = plt.subplots(2, 1, figsize=(8, 5), sharex=True)\n"
             "ax[0].plot(eq['ts'].to_numpy(), eq['equity'].to_numpy()); ax[0].set_ylabel('equity')\n"
             "ax[1].hist(res.trades['net_pnl'].to_numpy(), bins=30); "
             "ax[1].set_xlabel('net PnL per trade')\nfig.tight_layout()"),
    ("code", "assert res.trades.height > 0\n"
             "print(f\"{res.trades.height} trades, net {res.metric('net_pnl'):.2f} USDT\")"),
]

TUNING = [
    ("md", "# Tuning: a small study, its stored results, a preset\n\n"
           "The same calls as `arbkit tune`, `arbkit report` and `arbkit preset promote`."),
    ("code", "import dataclasses\nfrom arbkit.tune import delete_study, load_study, run_study, "
             "storage_for, trials_frame\n"
             "spec = dataclasses.replace(load_study('studies/tune_synth_normal.toml'),\n"
             "                           name='notebook_demo', trials=8)\n"
             "storage = storage_for(None, 'out/notebook-results')  # journal + DuckDB files\n"
             "delete_study(spec.name, storage)  # start clean each time the notebook runs\n"
             "study = run_study(spec, storage)"),
    ("code", "trials = trials_frame(study)\n"
             "trials.select('number', 'state', 'value_net_pnl', 'test_net_pnl', 'm_trades', "
             "'p_strategy.entry_bps').sort('value_net_pnl', descending=True)"),
    ("md", "Every trial's runs (train and test windows) are in the results store, with the "
           "effective config and the data hash."),
    ("code", "with storage.store() as store:\n    runs = store.runs(spec.name)\n"
             "runs.select('trial', 'config_hash', 'data_hash', 'n_trades', 'extra_json').head()"),
    ("code", "from arbkit.report import write_report\nfrom arbkit.tune.reporting import build_report\n"
             "path = write_report(build_report(spec.name, storage), 'out/notebook_demo.html')\n"
             "path"),
    ("code", "from arbkit.tune.preset import load_preset, promote, run_preset\n"
             "preset = load_preset(promote(spec.name, storage, 'notebook_best', "
             "folder='out/presets', force=True))\n"
             "_, metrics, mismatches = run_preset(preset)\n"
             "assert mismatches == []  # the preset reproduces its trial bit for bit\n"
             "preset.meta['trial'], metrics['net_pnl']"),
]


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(t) if k == "md" else new_code_cell(t) for k, t in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def main() -> None:
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    for name, cells in (("quickstart", QUICKSTART), ("tuning", TUNING)):
        nbformat.write(build(cells), out / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")


if __name__ == "__main__":
    main()
