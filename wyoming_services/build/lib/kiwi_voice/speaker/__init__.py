"""Kiwi speaker."""
