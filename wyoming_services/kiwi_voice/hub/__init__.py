"""Kiwi hub."""
