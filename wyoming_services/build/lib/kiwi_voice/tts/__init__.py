"""Kiwi tts."""
