"""The voice pipeline: one utterance end to end (docs/pipeline.md).

capture (audio/listener.py) → STT ∥ speaker identification → policy → routing (hub/routing)
→ TTS sentence by sentence → the sink the turn came from. `engine.Pipeline` runs turns one at
a time with barge-in; `setup.build_pipeline` wires it into the hub.
"""
