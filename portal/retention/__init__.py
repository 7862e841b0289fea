"""Retention and archival: how long each kind of record is kept, and what goes after."""
