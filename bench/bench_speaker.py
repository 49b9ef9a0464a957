"""kiwi-speaker: who is named and who is a guest (DET), how fast, how soon after a start, how big.

- Open set, in process with the service's own encoder and decision code (bench/speaker_eval.py):
  the evaluation set of tests/addon/test_speaker_open_set.py (13 enrolled voices, 9 never
  enrolled) and 40 random splits of a larger pool (every espeak-ng variant, 12 festival voices,
  piper joe, 3 pocketsphinx readers; 13 + 9 distinct voices per split, the rest as the cohort).
  The DET curve moves the rule's operating point (slack offset 0 = the shipped thresholds)
  and is traced beside cosine alone (the rule before) and full AS-norm.
- The real service over TCP: the same evaluation through kiwi-speaker (accepted / false
  accepts, identify round trip p50/p95 per clip of 2-6 s), its CPU per identify.
- Cold start: a fresh kiwi-speaker process with the 13 profiles on disk; seconds from spawn
  to the answer of an identify sent as soon as it listens; its RSS then and after 30 more
  identifies (and the peak). Beside it, resemblyzer itself (torch + librosa, numba cache warm)
  in a fresh Python: seconds to its first embedding and its peak RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.speaker_eval import (
    SHORT_COMMANDS,
    Trial,
    VoiceBank,
    det_curve,
    equal_error_rate,
    evaluate,
    random_split,
    rates,
)
from kiwi_voice.speaker.cohort import COHORT_PATH
from kiwi_voice.speaker.encoder import VoiceEncoder, bundled_weights
from kiwi_voice.speaker.matching import VoiceIndex, decide
from kiwi_voice.speaker.settings import THRESHOLD_CEILING, Thresholds
from kiwi_voice.speaker.store import StoreSnapshot
from tests.support import offline_models
from tests.support.ports import free_port
from tests.support.speaker_client import describe_when_loaded, enroll_clips, identify
from tests.support.voices import (
    ENROLLED_VOICES,
    FESTIVAL_VOICES,
    NEVER_ENROLLED_VOICES,
    voice_clips,
    wav_samples,
)
from tests.support.wyoming_process import ADDON_BIN, start_service

_LOGGER = logging.getLogger(__name__)

WORK_DIR = Path(__file__).resolve().parent / "work" / "speaker"
SPLITS = 40
COLD_STARTS = 3
WARM_IDENTIFIES = 30
SLACK_POINTS = np.round(np.arange(-0.10, 0.1001, 0.005), 4)


# -- open set, in process -----------------------------------------------------------------------


def _pool() -> list[str]:
    listing = subprocess.run(
        ["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    header, *lines = listing.splitlines()
    start, end = header.index("File"), header.index("Other Languages")
    files = [line[start:end].strip() for line in lines if line.strip()]
    espeak = [f"espeak:en-us+{f.removeprefix('!v/')}" for f in files if " " not in f]
    humans = ["human:librivox", "human:cards", "human:raw"]
    return sorted(espeak) + [f"festival:{v}" for v in FESTIVAL_VOICES] + ["piper:joe", *humans]


def _by_source(trials: list[Trial], accept: Callable[[Trial], bool]) -> dict[str, float]:
    """False rejects per voice source: a rule that fits synthetic voices may fail people."""
    found = {}
    for source in ("espeak", "festival", "piper", "human"):
        genuine = [t for t in trials if t.genuine and t.voice.startswith(f"{source}:")]
        if genuine:
            missed = sum(not (accept(t) and t.correct) for t in genuine)
            found[source] = round(100 * missed / len(genuine), 1)
    return found


def _summary(trials: list[Trial]) -> dict[str, Any]:
    false_accept, false_reject = rates(trials, lambda t: t.slack >= 0)
    genuine = [t for t in trials if t.genuine]
    return {
        "genuine_trials": len(genuine),
        "stranger_trials": len(trials) - len(genuine),
        "accepted_as_themselves_pct": round(100 - false_reject, 2),
        "false_accept_pct": round(false_accept, 2),
        "named_as_someone_else": sum(t.slack >= 0 and not t.correct for t in genuine),
    }


def _in_process_identify(encoder: VoiceEncoder, section: dict[str, Any]) -> None:
    """Front end + network + decision for the evaluation clips in this thread: wall and CPU."""
    clips = [c for v in ENROLLED_VOICES for c in voice_clips(v).test]
    thresholds = Thresholds()
    index = VoiceIndex.build(StoreSnapshot(1, ()), np.zeros((0, 256), np.float32), thresholds)
    walls, cpus = [], []
    for clip in clips:
        pcm = np.frombuffer(wav_samples(clip), "<i2").astype(np.float32) / 32768
        wall, cpu = time.perf_counter(), time.thread_time()
        embedded = encoder.embed(pcm)
        decide(index, embedded.embedding, thresholds, embedded.quality.seconds)
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    section["identify_in_process"] = {"wall": _percentiles(walls), "cpu": _percentiles(cpus)}


def _open_set(section: dict[str, Any], notes: list[str]) -> list[Trial]:
    weights = bundled_weights()
    assert weights is not None
    encoder = VoiceEncoder(weights)
    encoder.warm_up()
    _in_process_identify(encoder, section)
    bank = VoiceBank(encoder)
    thresholds = Thresholds()
    with np.load(COHORT_PATH, allow_pickle=False) as shipped:
        background = np.asarray(shipped["embeddings"], dtype=np.float32)
    for voice in (*ENROLLED_VOICES, *NEVER_ENROLLED_VOICES):
        bank.add(voice)
    trials = evaluate(bank, ENROLLED_VOICES, NEVER_ENROLLED_VOICES, background, thresholds)
    section["evaluation_set"] = {
        "enrolled_voices": len(ENROLLED_VOICES),
        "never_enrolled_voices": len(NEVER_ENROLLED_VOICES),
        **_summary(trials),
        "eer_pct": equal_error_rate(det_curve(trials, lambda t: t.slack, SLACK_POINTS)),
    }

    pool = _pool()
    for voice in pool:
        bank.add(voice)
    split_trials: list[Trial] = []
    short_trials: list[Trial] = []
    per_split = []
    for seed in range(SPLITS):
        enrolled, strangers, cohort = random_split(bank, pool, seed, 13, 9)
        found = evaluate(bank, enrolled, strangers, cohort, thresholds)
        split_trials += found
        short_trials += evaluate(bank, enrolled, strangers, cohort, thresholds, short=True)
        per_split.append(rates(found, lambda t: t.slack >= 0))
    section["random_splits"] = {
        "splits": SPLITS,
        "pool_voices": len(pool),
        **_summary(split_trials),
        "splits_meeting_both_targets": sum(fa <= 2 and fr <= 2 for fa, fr in per_split),
        "worst_split_false_accept_pct": round(max(fa for fa, _ in per_split), 2),
        "worst_split_false_reject_pct": round(max(fr for _, fr in per_split), 2),
    }
    section["short_commands"] = {
        "commands": len(SHORT_COMMANDS),
        "speech_seconds_median": round(
            float(np.median([s for v in pool for s in bank.short_seconds.get(v, [])])), 2
        ),
        **_summary(short_trials),
    }

    cosines = np.round(np.arange(0.70, 0.981, 0.005), 4)
    z_scores = np.round(np.arange(0.0, 8.01, 0.2), 2)
    curves = {
        "kiwi rule (slack offset)": det_curve(split_trials, lambda t: t.slack, SLACK_POINTS),
        "cosine alone": det_curve(split_trials, lambda t: t.cosine, cosines),
        "full AS-norm (top 10, z-scored)": det_curve(split_trials, lambda t: t.as_norm, z_scores),
    }
    section["det"] = curves
    section["eer_pct"] = {name: equal_error_rate(curve) for name, curve in curves.items()}
    section["false_accept_pct_at_98pct_accepted"] = {
        name: min(
            (p["false_accept_pct"] for p in curve if p["false_reject_pct"] <= 2), default=100.0
        )
        for name, curve in curves.items()
    }
    best_cosine = min(
        (p for p in curves["cosine alone"] if p["false_reject_pct"] <= 2),
        key=lambda p: p["false_accept_pct"],
        default=None,
    )
    section["false_reject_pct_by_source"] = {
        "kiwi rule": _by_source(split_trials, lambda t: t.slack >= 0),
    }
    if best_cosine is not None:
        cosine = best_cosine["threshold"]
        section["false_reject_pct_by_source"][f"cosine alone >= {cosine}"] = _by_source(
            split_trials, lambda t: t.cosine >= cosine
        )
    section["operating_point"] = {
        "slack_offset": 0.0,
        **thresholds.as_dict(),
        "note": "each profile's cosine threshold is calibrated at enrolment within "
        f"[{thresholds.identify}, {THRESHOLD_CEILING}]",
    }
    notes.append(
        "short commands: the same splits, every synthetic voice saying six 1-2 s commands "
        "(what a turn after the wake word carries); the evaluation clips are 2-6 s sentences"
    )
    notes.append(
        f"open set: {len(pool)} voices in the pool; random splits draw 13 enrolled + 9 "
        "never-enrolled voices no two of which are within 0.90 cosine, and use the pool's other "
        "voices (none within 0.95 of a drawn one) as the background cohort"
    )
    return trials


# -- the real service -----------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM"):
            values[key] = round(int(line.split()[1]) / 1024, 1)
    return values


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "count": len(ordered),
    }


async def _service_run(port: int, pid: int) -> dict[str, Any]:
    await describe_when_loaded(port)
    ids = {}
    for voice in ENROLLED_VOICES:
        ids[voice] = (await enroll_clips(port, voice_clips(voice).enrol, name=voice))["id"]
    planned = [(v, c, ids[v]) for v in ENROLLED_VOICES for c in voice_clips(v).test]
    for voice in NEVER_ENROLLED_VOICES:
        clips = voice_clips(voice)
        planned += [(voice, c, None) for c in (*clips.enrol, *clips.test)]
    times, answers = [], []
    cpu_before = _cpu_seconds(pid)
    for _voice, clip, _expected in planned:
        pcm = wav_samples(clip)
        started = time.perf_counter()
        answers.append(await identify(port, pcm))
        times.append(time.perf_counter() - started)
    cpu = _cpu_seconds(pid) - cpu_before
    genuine = [(a, e) for (_, _, e), a in zip(planned, answers, strict=True) if e is not None]
    strangers = [a for (_, _, e), a in zip(planned, answers, strict=True) if e is None]
    seconds = [len(wav_samples(c)) / 32000 for _, c, _ in planned]
    return {
        "accepted_as_themselves": f"{sum(a['id'] == e for a, e in genuine)}/{len(genuine)}",
        "accepted_as_themselves_pct": round(
            100 * sum(a["id"] == e for a, e in genuine) / len(genuine), 2
        ),
        "false_accepts": f"{sum(a['id'] is not None for a in strangers)}/{len(strangers)}",
        "false_accept_pct": round(
            100 * sum(a["id"] is not None for a in strangers) / len(strangers), 2
        ),
        "identify_round_trip": _percentiles(times),
        "clip_seconds_median": round(statistics.median(seconds), 2),
        "service_cpu_ms_per_identify": round(1000 * cpu / len(planned), 1),
    }


def _listen_then_identify(port: int, pcm: bytes, started: float) -> tuple[float, float]:
    """Connect as soon as the port opens, identify; (listening after, answered after) s."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.01)
    listening = time.perf_counter() - started
    answer = asyncio.run(identify(port, pcm))
    assert answer["decision"] in ("known", "unknown"), answer
    return listening, time.perf_counter() - started


def _cold_starts(database: Path, section: dict[str, Any]) -> None:
    pcm = wav_samples(voice_clips(ENROLLED_VOICES[0]).test[0])
    runs = []
    memory: dict[str, float] = {}
    for attempt in range(COLD_STARTS):
        folder = WORK_DIR / f"cold-{attempt}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copy(database, folder / "speakers.db")
        port = free_port()
        command = [str(ADDON_BIN / "kiwi-speaker"), "--uri", f"tcp://127.0.0.1:{port}"]
        command += ["--db", str(folder / "speakers.db")]
        with (folder / "kiwi-speaker.log").open("wb") as log:
            started = time.perf_counter()
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            listening, answered = _listen_then_identify(port, pcm, started)
            runs.append(
                {
                    "listening_s": round(listening, 3),
                    "first_identify_s": round(answered, 3),
                    # the process's own CPU time to get there: what a quiet core would take
                    "first_identify_cpu_s": round(_cpu_seconds(process.pid), 3),
                }
            )
            if attempt == 0:
                memory["after_first_identify"] = _memory_mb(process.pid)["VmRSS"]
                for _ in range(WARM_IDENTIFIES):
                    asyncio.run(identify(port, pcm))
                after = _memory_mb(process.pid)
                memory["after_warm_identifies"] = after["VmRSS"]
                memory["peak"] = after["VmHWM"]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
    section["cold_start"] = {
        "runs": runs,
        "first_identify_s_median": statistics.median(r["first_identify_s"] for r in runs),
        "first_identify_cpu_s_median": statistics.median(r["first_identify_cpu_s"] for r in runs),
        "listening_s_median": statistics.median(r["listening_s"] for r in runs),
    }
    section["rss_mb"] = memory


_RESEMBLYZER = """
import json, sys, time
started = float(sys.argv[1])
import numpy as np
from resemblyzer import VoiceEncoder, preprocess_wav
encoder = VoiceEncoder(device="cpu", verbose=False)
pcm = np.frombuffer(open(sys.argv[2], "rb").read(), dtype="<i2").astype(np.float32) / 32768
encoder.embed_utterance(preprocess_wav(pcm))
first = time.time() - started
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"first_embedding_s": first, "peak_mb": int(peak) / 1024}))
"""


def _resemblyzer_peer(section: dict[str, Any]) -> None:
    pcm_file = WORK_DIR / "peer.pcm"
    pcm_file.write_bytes(wav_samples(voice_clips(ENROLLED_VOICES[0]).test[0]))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(offline_models.configure_numba_cache())}
    result = subprocess.run(
        [sys.executable, "-c", _RESEMBLYZER, str(time.time()), str(pcm_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env=env,
    )
    peer = json.loads(result.stdout.strip().splitlines()[-1])
    section["resemblyzer_in_process"] = {
        "first_embedding_s": round(peer["first_embedding_s"], 2),
        "peak_rss_mb": round(peer["peak_mb"], 1),
    }


def _service(section: dict[str, Any]) -> None:
    folder = WORK_DIR / "service"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    service = start_service(
        "kiwi-speaker", ["--db", str(folder / "speakers.db")], folder / "kiwi-speaker.log"
    )
    try:
        section["service"] = asyncio.run(_service_run(service.port, service.process.pid))
    finally:
        service.stop()
    _cold_starts(folder / "speakers.db", section)


# -- entry point ----------------------------------------------------------------------------------


def run(results: dict[str, Any]) -> None:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    notes: list[str] = [
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start",
        "cold start: process cold (spawned fresh), disk cache warm; the identify is sent as "
        "soon as the port accepts and waits for the encoder to load",
    ]
    section: dict[str, Any] = {"notes": notes}
    results["speaker"] = section
    _open_set(section, notes)
    _service(section)
    try:
        _resemblyzer_peer(section)
    except (subprocess.SubprocessError, OSError, ValueError) as err:
        notes.append(f"resemblyzer peer not measured: {err}"[:300])
    peer = section.get("resemblyzer_in_process", {})
    section["comparisons"] = [
        {
            "name": "speaker: first identify after a cold start (s)",
            "kiwi": section["cold_start"]["first_identify_s_median"],
            "baseline": peer.get("first_embedding_s"),
            "baseline_name": "resemblyzer (torch+librosa) first embedding, numba cache warm",
            "lower_is_better": True,
        },
        {
            "name": "speaker: peak RSS (MiB)",
            "kiwi": section["rss_mb"]["peak"],
            "baseline": peer.get("peak_rss_mb"),
            "baseline_name": "resemblyzer (torch+librosa) in process",
            "lower_is_better": True,
        },
        {
            "name": "speaker: equal error rate, 40 random splits (%)",
            "kiwi": section["eer_pct"]["kiwi rule (slack offset)"],
            "baseline": section["eer_pct"]["cosine alone"],
            "baseline_name": "a cosine threshold alone (the rule before)",
            "lower_is_better": True,
        },
    ]
    _LOGGER.info("speaker: %s", {k: v for k, v in section.items() if k != "det"})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    measured: dict[str, Any] = {}
    run(measured)
    print(json.dumps({k: v for k, v in measured["speaker"].items() if k != "det"}, indent=2))
