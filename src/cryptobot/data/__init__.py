"""The Parquet lake under ``data_dir``, its DuckDB views, importers and fetchers.

Market data in and out of storage: validated writes (temp file + rename, per-series locks),
reads, imports, the fetcher and the market-data source protocol (``source``) it reads through.
It knows no venue implementation (``exchange/`` implements the protocol) and decides nothing."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "atomic": ("atomic_write", "sync_directory"),
        "fetcher": ("FetchPlan", "Fetcher", "Progress"),
        "importer": ("import_file",),
        "lake": ("Lake", "OHLCV", "WriteResult"),
        "liquidations": ("LiquidationVenue", "record"),
        "resample": ("resample",),
        "source": ("FundingRate", "MarketDataSource", "OhlcvRow", "OpenInterest", "Ticker"),
        "sources": ("ExchangeSource", "FEAR_GREED_SOURCE", "rows_frame"),
        "status": ("lake_status",),
        "universe": ("top_stored",),
    },
    modules=("arrow", "catalog", "crowd", "locks"),
)
