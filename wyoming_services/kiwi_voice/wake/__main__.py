"""Entry point of kiwi-wake (placeholder until the service lands)."""

import sys


def main() -> None:
    sys.exit("kiwi-wake is not implemented yet")


if __name__ == "__main__":
    main()
