"""Change requests: risk-based approvals, change windows with conflict and freeze checks."""
