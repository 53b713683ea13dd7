"""Surveys: CSAT, NPS and CES scales, signed answer links, one answer per send."""
