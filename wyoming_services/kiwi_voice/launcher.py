"""`kiwi`: starts the hub and the Wyoming services (placeholder until the launcher lands)."""

import sys


def main() -> None:
    sys.exit("kiwi launcher is not implemented yet")
