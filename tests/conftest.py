"""Shared fixtures. The local cloud's fixtures live in local/testing.py."""

pytest_plugins = ["local.testing"]
