"""Reserved for the changes blueprint (later issues)."""
