"""Audio sources and sinks of the voice pipeline: the /api/audio session (browser microphone),
WAV files, and the host's microphone and speaker. Each source asks a `ListenerFactory`
(pipeline/listener.py) for its listener; the endpoints live in hub/voice."""
