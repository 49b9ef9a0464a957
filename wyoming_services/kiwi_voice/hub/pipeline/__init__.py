"""The voice pipeline: one utterance end to end (docs/pipeline.md).

capture (listener.py) → STT ∥ speaker identification → policy → routing (hub/routing)
→ TTS sentence by sentence → the sink the turn came from. `engine.Pipeline` runs turns one at
a time with barge-in; hub/voice/setup.py wires it into the hub.
"""
