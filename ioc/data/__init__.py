"""Packaged open data and versioned domain configuration (see SOURCES.md for attribution)."""
