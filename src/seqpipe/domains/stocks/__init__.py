"""Stock prices: OHLCV series -> direct multi-day forecasts of returns or realized volatility."""

from seqpipe.domain import Domain

DOMAIN = Domain(
    name="stocks",
    task="seqpipe.domains.stocks.task",
    datamodules={"StockDataModule": "seqpipe.domains.stocks.datamodule"},
    extra="stocks",
    packages=("pandas", "arch", "bokeh_sampledata"),
)


def __getattr__(name: str):  # from seqpipe.domains.stocks import <its datamodule>
    return DOMAIN.export(name, __name__)
