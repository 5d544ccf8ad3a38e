"""From the packet buffer to the speaker: one block per playout tick (pure).

Fixed mode is the jitter buffer as it was: each tick takes the next packet and
decodes it, rebuilds it from the next packet's FEC, or conceals it.

Auto mode (the default) holds the playout delay at the target that
:class:`rtai.delay.DelayManager` derives from arrival statistics, in the manner of
WebRTC's NetEq, with the decision logic (:func:`decide`) kept apart from the delay
estimator and from the signal processing:

* Decoded audio goes into a small sample FIFO (the sync buffer); each tick takes
  exactly one block from it and decodes more only when it runs short.
* The *take delay* of a packet is the time from when it could have arrived at the
  earliest (the fastest recent packet, drift taken out) to the tick that takes it;
  the packet is missed if it arrives later. Its audio is heard after the audio still
  queued ahead of it. Jitter moves neither; only what we do does.
* Ticks are a block apart, so the take delay moves in whole blocks (a tick skips a
  packet when a block or more is queued, or takes two when the queue runs dry). The
  plan (:meth:`PlayoutEngine._error_ms`): take each packet at the first tick no sooner
  than the target, with the queue nearly empty. Holding the queue, not the take delay,
  saves up to a block of delay wherever the packets' phase against the ticks allows.
* A large error against the plan is corrected by time-scale modification
  (:mod:`rtai.dsp.tsm`): remove (accelerate) or repeat (stretch) about one pitch
  period, preferring quiet or steady chunks; silence can go in any amount. A queue
  about to run dry is grown by the first chunk that can be stretched, quiet or not.
  Chunks that need two blocks (the pitch search of low voices) copy the first
  before decoding the second: the decoders hand back the same array every time.
* Early stretching: while the next packet is overdue
  (:meth:`rtai.delay.DelayManager.overdue_ms`), each chunk decoded is stretched by up
  to ``EARLY_PASSES`` pitch periods (any amount up to a block per pass when quiet),
  so the audio in hand lasts longer before a spike has to be concealed. The gain this
  reaches per overdue episode is measured and handed to the delay manager, whose
  candidate buffers assume it (not over an episode that ends after a pause in sending,
  DTX or lost packets: the quiet tail of a talkspurt stretches far more than speech
  does); after the burst the usual accelerate brings the delay back to the target.
* A small error, and the sender's clock drift, are corrected continuously by
  resampling decoded audio by a ratio a few hundred ppm from 1
  (:mod:`rtai.dsp.resample`): the drift estimate feeds forward, the error feeds
  back (500 ppm per ms of error, at most 3000 ppm: 5 cents of pitch, inaudible).
* A packet that arrives after its slot was concealed is still played when nothing
  is queued behind it (the jitter buffer rewinds up to a spike's worth of blocks),
  so a spike costs concealment once and then a little more delay, which the
  accelerate operations win back as the target comes down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from rtai.codecs import CodecError
from rtai.delay import DelayManager
from rtai.dsp import tsm
from rtai.dsp.resample import DriftResampler
from rtai.jitter import JitterBuffer, Playout, PlayoutItem

PPM_PER_MS = 500.0  # resampling correction per ms of delay error
MAX_CORRECTION_PPM = 3000.0
FORCE_FACTOR = 3.0  # errors this many bands out are corrected even on busy audio
REWIND_S = 0.5  # how much concealed audio a late packet may take back in auto mode
QUEUE_AIM_MS = 1.0  # decoded audio left queued when a packet is taken (see _error_ms)
GROW_TOLERANCE_MS = 0.5  # the queue may fall this far below its aim before stretching
DEAD_BAND_MS = 0.5  # queue excess left to the drift estimate alone
EARLY_GAIN = 1.0  # while a packet is overdue: each pass adds up to this share of a block
EARLY_PASSES = 2  # ... and at most this many pitch periods are repeated per chunk
GAIN_MEMORY = 0.7  # per overdue episode: weight of the old measured stretch gain


class Operation(Enum):
    NORMAL = "normal"
    ACCELERATE = "accelerate"
    STRETCH = "stretch"


def decide(error_ms: float, band_ms: float, suitability: float) -> Operation:
    """What to do with the next decoded chunk, given the delay error (delay - target).

    Inside ``±band_ms`` the resampler alone corrects. Outside it, time-scale the chunk
    when it is a good place to (``suitability`` ≥ 0.5: quiet or periodic), or in any
    case once the error exceeds ``FORCE_FACTOR`` bands.
    """
    if abs(error_ms) <= band_ms:
        return Operation.NORMAL
    if suitability < 0.5 and abs(error_ms) < FORCE_FACTOR * band_ms:
        return Operation.NORMAL
    return Operation.ACCELERATE if error_ms > 0 else Operation.STRETCH


@dataclass
class PlayoutCounters:
    accelerate: int = 0
    stretch: int = 0
    frames_removed: int = 0
    frames_added: int = 0
    early_stretch: int = 0  # stretches made because the next packet was overdue


class PlayoutEngine:
    def __init__(
        self,
        jitter: JitterBuffer,
        decoder,
        block_frames: int,
        channels: int,
        rate_hz: int,
        loss_counters,
        delay: DelayManager | None = None,
    ) -> None:
        """``delay`` None means fixed mode; with a DelayManager the delay adapts.
        ``loss_counters`` gets ``fec_recovered`` and ``decode_errors`` counted into it."""
        self.jitter = jitter
        self.decoder = decoder
        self.block_frames = block_frames
        self.channels = channels
        self.rate_hz = rate_hz
        self.delay = delay
        self.counters = PlayoutCounters()
        self.loss = loss_counters
        self._silence = np.zeros((block_frames, channels), dtype=np.float32)
        self.last_delay_ms: float | None = None
        self.ratio = 1.0
        if delay is not None:
            rewind = max(1, round(REWIND_S * rate_hz / block_frames))
            jitter.rewind_blocks = rewind
            # Keep concealing through a spike long enough for its packets to be taken
            # back, and let time-scaling, not the overflow guard, bring the delay down.
            jitter.max_conceal_blocks = max(jitter.max_conceal_blocks, rewind + 2)
            jitter.overflow_margin_blocks = 2 * rewind
            self._fifo = np.zeros((block_frames * 16, channels), dtype=np.float32)
            self._fifo_n = 0
            self._resampler = DriftResampler(channels)
            self._out = np.zeros((block_frames, channels), dtype=np.float32)
            self._band_ms = max(500.0 * block_frames / rate_hz, 4.0)
            self._head_capture_s: float | None = None
            self._head_kind = Playout.IDLE
            self._head_arrival_s: float | None = None
            self._overdue_played = 0  # frames decoded and added in this overdue episode
            self._overdue_added = 0
            self._episode_gaps: int | None = None  # delay.sending_gaps when it began

    @property
    def adaptive(self) -> bool:
        return self.delay is not None

    @property
    def target_ms(self) -> float:
        return self.delay.target_ms if self.delay is not None else self.jitter.target_ms

    # -- one decoded block -------------------------------------------------------------

    def _decode(self, now_s: float) -> tuple[np.ndarray, PlayoutItem]:
        item = self.jitter.pop(now_s)
        dec = self.decoder
        if item.kind is Playout.NORMAL:
            try:
                return dec.decode(item.payload), item
            except CodecError:
                self.loss.decode_errors += 1
                return dec.conceal(), PlayoutItem(Playout.CONCEAL, item.seq)
        if item.kind is Playout.CONCEAL:
            if item.next_payload is not None:
                try:
                    block = dec.recover(item.next_payload)
                except CodecError:
                    block = None
                if block is not None:
                    self.loss.fec_recovered += 1
                    return block, item
            return dec.conceal(), item
        return self._silence, item

    # -- the tick ----------------------------------------------------------------------

    def next_block(self, now_s: float) -> tuple[np.ndarray, PlayoutItem]:
        """The block to play now. The item describes the first packet decoded for it
        (in auto mode the block may mix audio of two packets). The returned array is
        valid until the next call."""
        if self.delay is None:
            return self._decode(now_s)
        return self._next_adaptive(now_s)

    def _next_adaptive(self, now_s: float) -> tuple[np.ndarray, PlayoutItem]:
        n = self.block_frames
        delay = self.delay
        self.jitter.target_ms = delay.target_ms  # start/rebuffer and overflow guard
        late = delay.overdue_ms(now_s) > 0.0
        self._measure_gain(late)
        overdue = late and self.jitter.playing
        first: PlayoutItem | None = None
        while self._fifo_n < n:
            block, item = self._decode(now_s)
            first = first or item
            chunk = block
            at = self._fifo_n / self.rate_hz  # how long before this chunk starts playing
            if item.kind is Playout.NORMAL and item.timestamp is not None:
                # The packet is taken now: that decides whether a late one is missed. The
                # audio queued ahead of it plays first, so it is heard ``queued`` later.
                self.last_delay_ms = delay.playout_delay_ms(item.timestamp, now_s)
                queued_ms = at * 1000.0
                error_ms = self._error_ms(self.last_delay_ms, queued_ms, delay.target_ms)
                chunk = self._time_scale(chunk, error_ms, now_s, overdue)
                # A dead band: inside it the drift estimate alone sets the rate, so a
                # settled call is not resampled back and forth for nothing.
                feedback = max(0.0, error_ms - DEAD_BAND_MS) if error_ms > 0 else error_ms
                correction = float(
                    np.clip(-feedback * PPM_PER_MS, -MAX_CORRECTION_PPM, MAX_CORRECTION_PPM)
                )
                self.ratio = delay.drift.ratio * (1.0 + correction * 1e-6)
            if item.kind is Playout.NORMAL:
                # Times of the sample now at the head of the FIFO, from this packet.
                self._head_capture_s = None if item.capture_s is None else item.capture_s - at
                self._head_arrival_s = None if item.arrival_s is None else item.arrival_s - at
            self._head_kind = item.kind if self._fifo_n == 0 else self._head_kind
            self._push(self._resampler.process(chunk, self.ratio))
        block = self._out
        block[:] = self._fifo[:n]
        rest = self._fifo_n - n
        self._fifo[:rest] = self._fifo[n : self._fifo_n]
        self._fifo_n = rest
        kind = self._head_kind  # what the audio now playing came from
        head = PlayoutItem(
            kind,
            first.seq if first is not None else None,
            capture_s=self._head_capture_s if kind is Playout.NORMAL else None,
            arrival_s=self._head_arrival_s if kind is Playout.NORMAL else None,
        )
        step = n / self.rate_hz
        if self._head_capture_s is not None:
            self._head_capture_s += step
        if self._head_arrival_s is not None:
            self._head_arrival_s += step
        return block, head

    def _error_ms(self, take_ms: float, queued_ms: float, target_ms: float) -> float:
        """How much later than it should the audio of the packet just taken is heard (ms).

        A packet is taken at a tick, so its take delay moves in whole blocks: the audio
        queued ahead of it (``queued_ms``, under a block) grows past a block and a tick
        skips a packet, or falls below zero and a tick takes two. The best plan takes
        each packet at the first tick no sooner than the target, with the queue nearly
        empty (:data:`QUEUE_AIM_MS`); the error is the distance to that plan: a whole
        number of blocks to grow or shrink the take delay by, plus the queue's excess.
        """
        block_ms = 1000.0 * self.block_frames / self.rate_hz
        # No hysteresis: after a late packet has pushed the take delay a block up, any
        # room above the target is given back (the target itself moves smoothly).
        blocks = math.ceil((target_ms - take_ms) / block_ms - 1e-9)
        return queued_ms - QUEUE_AIM_MS - blocks * block_ms

    def _with_next(self, block: np.ndarray, now_s: float) -> np.ndarray:
        """``block`` and the next packet's audio when it is here: a second block lets the
        pitch search reach low voices."""
        if not self.jitter.peek_next():
            return block
        block = block.copy()  # the decoder hands back the same array every time
        nxt, _ = self._decode(now_s)
        return np.concatenate([block, nxt])

    def _measure_gain(self, late: bool) -> None:
        """Measure how much early stretching gains per overdue episode (frames added per
        frame of audio in hand stretched) and tell the delay manager, whose candidate
        buffers assume it. An episode runs while the next packet is late and ends when it
        arrives; one that ends after a pause in sending (DTX, lost packets) is not
        counted: the audio stretched then was a talkspurt's quiet tail, not a spike's."""
        d = self.delay
        if late:
            if self._episode_gaps is None:
                self._episode_gaps = d.sending_gaps
            return
        if self._episode_gaps is None:
            return
        if self._overdue_played and d.sending_gaps == self._episode_gaps:
            gain = self._overdue_added / self._overdue_played
            d.stretch_gain = GAIN_MEMORY * d.stretch_gain + (1.0 - GAIN_MEMORY) * gain
        self._overdue_played = self._overdue_added = 0
        self._episode_gaps = None

    def _time_scale(
        self, block: np.ndarray, error_ms: float, now_s: float, overdue: bool = False
    ) -> np.ndarray:
        band = self._band_ms
        if overdue:
            # The next packet is overdue: a spike has begun and the audio in hand may run
            # dry before it comes. Stretch now, while there is audio to stretch.
            chunk = self._with_next(block, now_s)
            self._overdue_played += len(chunk)
            amount = int(EARLY_GAIN * len(block))
            out, added = chunk, 0
            for _ in range(EARLY_PASSES):
                out, more = tsm.stretch(out, self.rate_hz, max_add_frames=amount)
                added += more
                if not more:
                    break
            if chunk is not block and not added:
                return chunk
            if added:
                self.counters.stretch += 1
                self.counters.early_stretch += 1
                self.counters.frames_added += added
                self._overdue_added += added
                return out
        if -GROW_TOLERANCE_MS <= error_ms <= band:
            return block
        if error_ms < 0:
            # The queue is nearly empty (or the take delay is below the target): grow
            # now, not waiting for a quiet chunk, as the next tick could take a packet
            # too soon (tsm.stretch still refuses loud chunks it cannot cut cleanly).
            op = Operation.STRETCH
            amount_ms = -error_ms + band / 2
        else:
            op = decide(error_ms, band, tsm.suitability(block, self.rate_hz))
            # Never past the plan when shrinking: overshooting would make the next tick
            # take a packet a block sooner than the target.
            amount_ms = error_ms - GROW_TOLERANCE_MS / 2
        amount = int(amount_ms * self.rate_hz / 1000.0)
        if amount <= 0:
            return block
        if op is Operation.ACCELERATE:
            chunk = self._with_next(block, now_s)
            out, removed = tsm.accelerate(chunk, self.rate_hz, max_remove_frames=amount)
            if removed:
                self.counters.accelerate += 1
                self.counters.frames_removed += removed
            return out
        if op is Operation.STRETCH:
            out, added = tsm.stretch(block, self.rate_hz, max_add_frames=amount)
            if added:
                self.counters.stretch += 1
                self.counters.frames_added += added
            return out
        return block

    def _push(self, x: np.ndarray) -> None:
        need = self._fifo_n + len(x)
        if need > len(self._fifo):
            grown = np.zeros((max(need, 2 * len(self._fifo)), self.channels), np.float32)
            grown[: self._fifo_n] = self._fifo[: self._fifo_n]
            self._fifo = grown
        self._fifo[self._fifo_n : need] = x
        self._fifo_n = need

    @property
    def buffered_ms(self) -> float:
        """Audio waiting: packets in the jitter buffer plus decoded samples not yet played."""
        fifo_ms = 1000.0 * self._fifo_n / self.rate_hz if self.delay is not None else 0.0
        return self.jitter.buffered_ms + fifo_ms
