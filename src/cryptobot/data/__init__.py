"""The Parquet lake under ``data_dir``, its DuckDB views, importers and fetchers."""
