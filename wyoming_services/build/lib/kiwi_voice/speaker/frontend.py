"""resemblyzer's audio front end in numpy: what its encoder was trained to hear.

The same steps and constants as `resemblyzer.audio` and `VoiceEncoder.embed_utterance`
(resemblyzer 0.1.4 with librosa 0.11), without librosa, numba or scipy:

1. volume: raise (never lower) the level to -30 dBFS RMS;
2. silence: webrtcvad (mode 3) on 30 ms windows, smoothed by a moving average of 8 windows,
   dilated by 3 windows either side; the rest is cut out;
3. mel power spectrogram: 16 kHz, 25 ms Hann window (400 samples, periodic), 10 ms hop
   (160), zero-padded centred frames, 40 Slaney mel bands from 0 to 8 kHz, power 2 (not log);
4. partials: windows of 160 frames (1.6 s) every 77 frames (1.3 partials per second); the
   last one is kept if it is at least 75 % covered by the audio (always at least one).

tests/addon/test_speaker_encoder.py checks this against resemblyzer itself.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
PARTIALS_PER_SECOND = 1.3
MIN_LAST_COVERAGE = 0.75
TARGET_DBFS = -30.0
VAD_WINDOW = 480  # 30 ms
VAD_AVERAGE_WIDTH = 8
VAD_MAX_SILENCE = 6
INT16_MAX = 2**15 - 1

FloatArray = NDArray[np.float32]


def volume_gain(wav: FloatArray) -> float:
    """The gain that raises quiet audio to -30 dBFS RMS; 1 for louder audio (never lowered)."""
    rms = np.sqrt(np.mean((wav * INT16_MAX) ** 2))
    change_db = TARGET_DBFS - 20 * np.log10(rms / INT16_MAX)
    return 1.0 if change_db < 0 else float(10 ** (change_db / 20))


def _moving_average(flags: NDArray[np.bool_], width: int) -> NDArray[np.float64]:
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    summed = np.cumsum(padded, dtype=float)
    summed[width:] = summed[width:] - summed[:-width]
    return summed[width - 1 :] / width


def trim_long_silences(wav: FloatArray) -> FloatArray:
    """Cut silences longer than ~0.2 s, as webrtcvad (mode 3) hears them."""
    import webrtcvad

    wav = wav[: len(wav) - (len(wav) % VAD_WINDOW)]
    pcm = np.round(wav * INT16_MAX).astype("<i2").tobytes()
    vad = webrtcvad.Vad(3)
    window_bytes = 2 * VAD_WINDOW
    flags = np.array(
        [
            vad.is_speech(pcm[start : start + window_bytes], SAMPLE_RATE)
            for start in range(0, len(pcm), window_bytes)
        ],
        dtype=bool,
    )
    mask = np.round(_moving_average(flags, VAD_AVERAGE_WIDTH)).astype(bool)
    # scipy's binary dilation by VAD_MAX_SILENCE + 1 ones, centred: a window is kept when a
    # window within 3 of it is voiced (zero beyond the ends, as scipy's border value).
    mask = np.convolve(mask, np.ones(VAD_MAX_SILENCE + 1), mode="same") > 0
    return wav[np.repeat(mask, VAD_WINDOW)]


def preprocess(wav: FloatArray) -> tuple[FloatArray, float]:
    """16 kHz mono float audio -> the speech the encoder embeds, and the gain applied to it."""
    gain = volume_gain(wav)
    # `wav * gain` in float32 as resemblyzer computes it (numpy keeps a Python float weak).
    return trim_long_silences(wav if gain == 1.0 else wav * gain), gain


def _hz_to_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa, htk=False)."""
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    mels = hz / f_sp
    log_part = hz >= 1000.0
    mels[log_part] = min_log_mel + np.log(hz[log_part] / 1000.0) / logstep
    return mels


def _mel_to_hz(mels: NDArray[np.float64]) -> NDArray[np.float64]:
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    hz = f_sp * mels
    log_part = mels >= min_log_mel
    hz[log_part] = 1000.0 * np.exp(logstep * (mels[log_part] - min_log_mel))
    return hz


@cache
def mel_filters() -> FloatArray:
    """(40, 201) triangular Slaney-normalised filters, as librosa.filters.mel builds them."""
    fft_freqs = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)
    limits = _hz_to_mel(np.array([0.0, SAMPLE_RATE / 2.0]))
    mel_freqs = _mel_to_hz(np.linspace(limits[0], limits[1], N_MELS + 2))
    spacing = np.diff(mel_freqs)
    ramps = np.subtract.outer(mel_freqs, fft_freqs)
    weights = np.zeros((N_MELS, len(fft_freqs)), dtype=np.float32)
    for band in range(N_MELS):
        lower = -ramps[band] / spacing[band]
        upper = ramps[band + 2] / spacing[band + 1]
        weights[band] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2 : N_MELS + 2] - mel_freqs[:N_MELS]))[:, np.newaxis]
    weights.setflags(write=False)
    return weights


@cache
def _window() -> NDArray[np.float64]:
    """Periodic Hann window of N_FFT samples (scipy's get_window('hann', fftbins=True))."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    window.setflags(write=False)
    return window


def mel_spectrogram(wav: FloatArray) -> FloatArray:
    """(frames, 40) mel power spectrogram, frame i centred on sample 160 * i."""
    padded = np.pad(wav, N_FFT // 2)
    count = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
    spectrum = np.fft.rfft(frames * _window(), axis=-1).astype(np.complex64)
    power = np.abs(spectrum) ** 2  # float32
    return (power @ mel_filters().T).astype(np.float32)


def partial_starts(n_samples: int) -> list[int]:
    """First frame of each 160-frame partial (resemblyzer's compute_partial_slices)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = round(SAMPLE_RATE / PARTIALS_PER_SECOND / HOP)  # 77 frames
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (n_samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_LAST_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def partial_mels(speech: FloatArray) -> FloatArray:
    """(partials, 160, 40): the mel spectrogram of each partial of `speech`."""
    starts = partial_starts(len(speech))
    needed = (starts[-1] + PARTIAL_FRAMES) * HOP
    if needed >= len(speech):
        speech = np.pad(speech, (0, needed - len(speech)))
    mel = mel_spectrogram(speech)
    return np.stack([mel[start : start + PARTIAL_FRAMES] for start in starts])


def split_speech(speech: FloatArray, segment_seconds: float) -> list[FloatArray]:
    """`speech` cut into equal segments of at least `segment_seconds` (one piece if shorter
    than two): a long enrolment clip becomes several samples, so its profile can be
    calibrated like one enrolled from several clips."""
    count = int(len(speech) // (segment_seconds * SAMPLE_RATE))
    if count < 2:
        return [speech]
    return list(np.array_split(speech, count))
