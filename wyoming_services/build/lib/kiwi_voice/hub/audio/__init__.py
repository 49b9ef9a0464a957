"""Audio in and out of the hub: the /api/audio WebSocket (browser microphone), WAV files,
and the host's microphone and speaker; each source gets a `listener.Listener`."""
