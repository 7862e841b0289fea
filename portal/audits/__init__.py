"""The audit trail: `record()` for every state change, and its verification."""

from .services import diff, fingerprint, record

__all__ = ["diff", "fingerprint", "record"]
