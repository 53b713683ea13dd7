"""The one decision per send: consent, channels, quiet hours, caps and fatigue (docs/POLICY.md)."""
