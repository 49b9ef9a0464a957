"""Kiwi wake."""
