"""Entry point of kiwi-tts (placeholder until the service lands)."""

import sys


def main() -> None:
    sys.exit("kiwi-tts is not implemented yet")


if __name__ == "__main__":
    main()
