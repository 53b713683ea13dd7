"""Delivery: claimed sends in, one recorded outcome per send out; rate limits."""
