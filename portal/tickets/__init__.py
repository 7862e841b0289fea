"""Reserved for the tickets blueprint (later issues)."""
