"""Entry point of kiwi-speaker (placeholder until the service lands)."""

import sys


def main() -> None:
    sys.exit("kiwi-speaker is not implemented yet")


if __name__ == "__main__":
    main()
