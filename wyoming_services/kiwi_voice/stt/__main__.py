"""Entry point of kiwi-stt (placeholder until the service lands)."""

import sys


def main() -> None:
    sys.exit("kiwi-stt is not implemented yet")


if __name__ == "__main__":
    main()
