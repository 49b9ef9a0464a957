"""Entry point of kiwi-hub (placeholder until the service lands)."""

import sys


def main() -> None:
    sys.exit("kiwi-hub is not implemented yet")


if __name__ == "__main__":
    main()
