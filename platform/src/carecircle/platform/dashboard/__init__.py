"""The care-centre dashboard: server-rendered pages, a small script for the live board."""
