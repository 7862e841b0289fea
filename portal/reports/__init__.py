"""Reserved for the reports blueprint (later issues)."""
