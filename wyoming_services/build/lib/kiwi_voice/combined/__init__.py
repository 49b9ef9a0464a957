"""Kiwi's combined Wyoming endpoint: one port that offers STT, TTS and wake word together.

The Supervisor keeps one discovery message per service name per add-on, so Home Assistant's Wyoming
integration can only be told about one Wyoming address. This endpoint answers `describe` with the
merged `info` of the STT, TTS and wake services and proxies every other event to the service that
handles it.
"""
