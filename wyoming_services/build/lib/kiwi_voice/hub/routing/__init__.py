"""Routing a request to whoever answers it: Home Assistant's conversation agent, then Claude
(see router.py), with a conversation history per speaker (contexts.py). `api.py` serves the
same routing as POST /api/conversation."""
