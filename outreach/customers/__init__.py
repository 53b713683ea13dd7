"""Customers: the profile record and its validation, profiles and consent in Redis."""
