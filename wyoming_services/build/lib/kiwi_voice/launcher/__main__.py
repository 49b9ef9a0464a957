"""`python -m kiwi_voice.launcher`, the same as `kiwi`."""

from .cli import main

if __name__ == "__main__":
    main()
