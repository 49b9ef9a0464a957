"""Kiwi stt."""
