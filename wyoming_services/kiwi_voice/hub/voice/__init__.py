"""The voice pipeline put together (docs/hub.md, "Layers"): the parts the handlers reach
(runtime.py), how they are built and started (setup.py), and the endpoints that need them:
/api/audio and /api/audio/file (audio_api.py), /api/conversation (conversation_api.py).

The one package that sees the pipeline, the audio sources and the routing at once; nothing
below it imports it."""
