"""`kiwi`: starts the hub and the Wyoming services, in the add-on (under s6) and outside it."""

from .cli import main

__all__ = ["main"]
