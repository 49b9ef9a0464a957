"""Approvals: a guest's command or a sensitive Home Assistant action waits for the owner's yes
(Telegram, Home Assistant's kiwi.approve, the dashboard, or the owner's voice). See
docs/approvals.md; `setup.py` wires it into the hub."""
