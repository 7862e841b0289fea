"""Health, version, the Outbox page and `flask ops …` commands."""
