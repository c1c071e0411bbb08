"""HTTP: the ingest fast path, login, the dashboard JSON API."""
