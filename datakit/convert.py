"""``convert_video``: a real SDR video in, a playable HDR10 video out, through a registered SDR-to-HDR model.

One decode, one encode:

1. :class:`~datakit.io.reader.VideoReader` decodes the input and converts its Y'CbCr to BT.709 R'G'B'
   (``rgb_sdr``, float32 [0, 1]) with the tagged matrix and range; untagged streams are assumed BT.709 SDR and
   the assumption is reported in the result's ``warnings``. Odd widths or heights lose their last column or
   row (4:2:0 output needs even sizes).
2. The model maps ``rgb_sdr`` to ``rgb_pq`` (SMPTE ST 2084 PQ code values of BT.2020 R'G'B'):

   - single-frame models get ``batch`` frames at a time, ``(N, 3, H, W)``;
   - multi-frame models returning the centre frame (DSLNet, ``output_frames == 1``) get, for every frame ``t``,
     the window ``t - T//2 .. t + T//2`` (``T = model.frames``); past either end of the video frames are mirrored
     (reflection without repeating the edge frame: frame ``-1`` is frame ``1``, frame ``n`` is frame ``n-2``);
   - models returning all ``T`` frames (KPN-MFI) run on consecutive groups of ``T`` frames, the last group
     completed by reflection, and every output frame is kept.

   The video is decoded once: a rolling buffer holds the frames the coming windows need (``T``; ``2T - 1`` for
   groups).
   Frames larger than a model's comfortable size are cut into overlapping tiles blended by
   :func:`datakit.nn.tiling.tiled_apply` (``tile=None``: automatic, whole frames up to 1920 x 1088, 512-pixel
   tiles above; KPN-MFI's self-attention tiles above 512 x 512), which bounds memory at 4K. Tiles run on the
   model's device while the full frames stay in host memory. On CUDA, learned models run under float16
   autocast; a CUDA out-of-memory error splits the batch, then tiles the frame, and the work is redone.
3. The output is clipped to ``[0, PQ(peak_nits)]``: nothing brighter than ``peak_nits`` cd/m^2 is written (the
   fraction of clipped pixels is reported).
4. :class:`~datakit.io.writer.HDR10Writer` encodes HEVC Main10 (libx265) yuv420p10le with BT.2020 / ST 2084 /
   BT.2020 NCL / limited-range VUI, an SMPTE ST 2086 mastering display (P3-D65, 0.0001 to ``peak_nits``
   cd/m^2) and CTA-861.3 MaxCLL / MaxFALL measured on the output frames. Frames are encoded as they come and the
   measured values are written into the finished file in place (nothing is spooled: the temporary space is the
   compressed output). Every frame keeps the source's presentation time (variable frame rate survives), shifted
   so that the video starts at 0.
5. Audio streams are copied packet for packet (no re-encoding) from the source into the final file; the video
   is first written to a temporary file, then both are muxed. The output appears under its final name only
   when everything succeeded: every temporary file (the encoder's output, the video before muxing) lives in
   the work folder ``.<output name>.partial`` beside the output, locked while a conversion runs
   (:func:`work_folder`); the finished file is renamed out of it. A killed conversion leaves only that
   folder, which the next conversion to the same output (a rerun, ``--overwrite``) removes first.

Without ``model`` and ``checkpoint`` the ``classical`` conversion (BT.1886 -> BT.2020 -> BT.2408 203 cd/m^2
white -> PQ) runs, which needs no weights. A learned model without ``checkpoint`` uses the shipped checkpoint
``models/NAME/*.pt`` of the repository (see ``models/README.md``; ``DATAKIT_MODELS`` names another folder).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import heapq
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

import datakit
from datakit.errors import DatakitError, InputError, ModelError, OutputExistsError, UnsupportedFormatError
from datakit.fsutil import write_failure

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "AUTO_TILE",
    "FrameConverter",
    "convert_frames",
    "convert_video",
    "models_dir",
    "reflect_index",
    "resolve_model",
    "shipped_checkpoint",
    "temporal_windows",
]

T = TypeVar("T")

AUTO_TILE = 512
"""Tile size chosen when ``tile=None`` and the frame is larger than the model's whole-frame limit."""
_WHOLE_FRAME_PIXELS = 1920 * 1088
# Models whose memory grows faster than the frame area: KPN-MFI's self-attention at 1/8 resolution is
# quadratic in the number of positions (1080p: 32,400 positions, a 4 GB attention matrix).
_WHOLE_FRAME_PIXELS_BY_MODEL = {"kpnmfi": 512 * 512}
_MIN_OOM_TILE = 128
X265_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


# ----------------------------------------------------------------------------------------------- models


def models_dir() -> Path:
    """Folder of shipped checkpoints: ``$DATAKIT_MODELS`` if set, else ``models/`` at the repository top."""
    env = os.environ.get("DATAKIT_MODELS")
    return Path(env) if env else Path(datakit.__file__).resolve().parent.parent / "models"


def shipped_checkpoint(name: str) -> Path | None:
    """The shipped checkpoint of model ``name``: ``models/NAME/NAME.pt``, else ``best.pt``, else the first ``*.pt``
    in name order; ``None`` when the folder has none."""
    found = sorted((models_dir() / name).glob("*.pt"))
    for preferred in (f"{name}.pt", "best.pt"):
        for path in found:
            if path.name == preferred:
                return path
    return found[0] if found else None


def resolve_model(
    model: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
) -> tuple[nn.Module, str, dict[str, Any]]:
    """A ready SDR-to-HDR model in eval mode: ``(module, name, info)``.

    ``model=None``: the checkpoint's model, or ``classical`` without a checkpoint. A learned model without
    ``checkpoint`` loads its shipped checkpoint (:func:`shipped_checkpoint`); :class:`ModelError` when there is
    none, for an unknown name, or for a checkpoint of another model. ``device``: ``None``/``auto`` (CUDA when
    available), ``cpu``, ``cuda``, ``cuda:N``.
    """
    from datakit.nn.device import select_device
    from datakit.nn.registry import count_parameters, create_model, model_spec
    from datakit.nn.train import PDCGPipeline, load_model

    dev = select_device(str(device) if device is not None else "auto")
    if checkpoint is None:
        name = model_spec(model or "classical").name
        shipped = shipped_checkpoint(name)
        if shipped is not None:
            checkpoint = shipped
        elif count_parameters(create_model(name), trainable_only=True) > 0:
            raise ModelError(
                f"model {name!r} needs trained weights and {models_dir() / name} has no *.pt checkpoint: "
                f"pass --checkpoint FILE (from datakit train) or omit --model for the classical conversion"
            )
    module, name, info = load_model(model, checkpoint, device=dev)
    if name == "pdcg" and not isinstance(module, PDCGPipeline):
        raise ModelError(
            f"{checkpoint}: a bare PDCG state dict has no first stage; use the PDCG checkpoint of datakit train"
        )
    frames, outputs = int(getattr(module, "frames", 1)), int(getattr(module, "output_frames", 1))
    if frames < 1 or outputs not in (1, frames):
        raise ModelError(f"model {name!r}: cannot convert video with {frames} input / {outputs} output frames")
    info["device"] = str(dev)
    return module, name, info


# ----------------------------------------------------------------------------------------------- windows


def reflect_index(j: int, n: int) -> int:
    """Mirror a frame index into ``[0, n)`` without repeating the edge (``-1 -> 1``, ``n -> n - 2``)."""
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    j %= period
    return period - j if j >= n else j


def temporal_windows(items: Iterable[T], size: int, *, centre: bool = True) -> Iterator[tuple[list[int], list[T]]]:
    """Windows of ``size`` consecutive items over a stream that is read once.

    ``centre=True``: one window per item ``t``, items ``t - size//2 .. t + size//2``; yields ``([size//2],
    window)``: the position in the window of the item it is for. ``centre=False``: windows ``t .. t + size - 1``
    for ``t = 0, size, 2 size...``; yields the positions of the real items (the last window may be completed by
    mirrored ones). Indices outside the stream are mirrored by :func:`reflect_index`. Only the items the coming
    windows may still need are kept (``size`` of them, ``2 size - 1`` for ``centre=False``).
    """
    if size < 1:
        raise ValueError(f"window size must be >= 1, got {size}")
    source = iter(items)
    buffer: dict[int, T] = {}
    total: int | None = None  # known when the stream ends
    read = 0
    half = size // 2 if centre else 0
    start = 0
    while True:
        lo = start - half
        hi = lo + size - 1
        while total is None and read <= hi:
            try:
                buffer[read] = next(source)
                read += 1
            except StopIteration:
                total = read
        if total is not None and start >= total:
            return
        if total is None:
            indices = [-j if j < 0 else j for j in range(lo, hi + 1)]
        else:
            indices = [reflect_index(j, total) for j in range(lo, hi + 1)]
        window = [buffer[j] for j in indices]
        positions = [half] if centre else [k for k in range(size) if total is None or lo + k < total]
        yield positions, window
        start += 1 if centre else size
        # Oldest item a coming window can reach, mirrored ends included.
        forget = start - half if centre else start - size + 1
        for key in [k for k in buffer if k < forget]:
            del buffer[key]


# ----------------------------------------------------------------------------------------------- inference


class FrameConverter:
    """Runs a loaded SDR-to-HDR model on batches of windows of frames.

    Call it with a list of windows (each a list of ``model.frames`` arrays ``rgb_sdr`` ``(H, W, 3)`` float32 in
    [0, 1], BT.709 R'G'B'); it returns ``rgb_pq`` ``(N, K, H, W, 3)`` float32 (ST 2084 PQ BT.2020 R'G'B'),
    ``K = model.output_frames``, clipped to ``[0, PQ(peak_nits)]``. ``tile``: ``None`` automatic, ``0`` whole
    frames, else the tile size (with ``overlap`` pixels blended between tiles).
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        name: str = "",
        tile: int | None = None,
        overlap: int = 32,
        peak_nits: float = 1000.0,
        half: bool | None = None,
    ) -> None:
        import torch

        from datakit.color.transfer import st2084_inverse_eotf

        self.module = module
        self.name = name
        self.frames = int(getattr(module, "frames", 1))
        self.output_frames = int(getattr(module, "output_frames", 1))
        try:
            param = next(module.parameters())
            self.device, learned = param.device, True
        except StopIteration:
            self.device, learned = torch.device("cpu"), False
            buffers = list(module.buffers())
            if buffers:
                self.device = buffers[0].device
        self.half = (self.device.type == "cuda" and learned) if half is None else bool(half)
        self.tile = tile
        self.overlap = int(overlap)
        self.peak_nits = float(peak_nits)
        self.peak_pq = float(st2084_inverse_eotf(np.float64(self.peak_nits)))
        self.pixels = 0
        self.clipped = 0
        self.notes: list[str] = []

    def tile_for(self, height: int, width: int) -> int | None:
        """The tile size used for frames of this size (``None``: whole frames)."""
        if self.tile == 0:
            return None
        if self.tile is not None:
            return int(self.tile)
        limit = _WHOLE_FRAME_PIXELS_BY_MODEL.get(self.name, _WHOLE_FRAME_PIXELS)
        return AUTO_TILE if height * width > limit else None

    def _model(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        x = x.to(self.device, non_blocking=True)
        if self.half:
            with torch.autocast(self.device.type, dtype=torch.float16):
                y = self.module(x)
        else:
            y = self.module(x)
        return y.float().cpu()

    def _forward(self, x: torch.Tensor, tile: int | None) -> torch.Tensor:
        """Model output for a host tensor ``x``; on CUDA out-of-memory, split the batch, then tile smaller."""
        import torch

        from datakit.nn.tiling import tiled_apply

        try:
            return tiled_apply(self._model, x, tile, self.overlap)
        except torch.cuda.OutOfMemoryError:
            if self.device.type != "cuda":  # pragma: no cover - CPU allocation failures are MemoryError
                raise
            torch.cuda.empty_cache()
            if x.shape[0] > 1:
                mid = x.shape[0] // 2
                return torch.cat([self._forward(x[:mid], tile), self._forward(x[mid:], tile)])
            smaller = AUTO_TILE if tile is None else tile // 2
            if smaller < _MIN_OOM_TILE or smaller <= self.overlap:
                raise
            self.notes.append(f"CUDA out of memory: tiles of {smaller} px from now on")
            self.tile = smaller
            return self._forward(x, smaller)

    def __call__(self, windows: list[list[np.ndarray]]) -> np.ndarray:
        import torch

        if not windows:
            raise ValueError("no windows to convert")
        if any(len(w) != self.frames for w in windows):
            raise ValueError(f"model takes {self.frames} frames per window")
        height, width = windows[0][0].shape[:2]
        x = torch.empty((len(windows), self.frames, 3, height, width), dtype=torch.float32)  # rgb_sdr
        for n, window in enumerate(windows):
            for t, frame in enumerate(window):
                x[n, t].copy_(torch.from_numpy(np.asarray(frame, dtype=np.float32)).permute(2, 0, 1))
        if self.frames == 1:
            x = x[:, 0]
        with torch.inference_mode():
            y = self._forward(x, self.tile_for(height, width))
            if y.dim() == 4:
                y = y[:, None]
            if not bool(torch.isfinite(y).all()):
                raise ModelError(f"model {self.name or type(self.module).__name__!r} produced NaN or infinite values")
            over = (y.amax(dim=2) > self.peak_pq).sum()
            y = y.clamp_(0.0, self.peak_pq)
        self.pixels += y.shape[0] * y.shape[1] * y.shape[3] * y.shape[4]
        self.clipped += int(over)
        return y.permute(0, 1, 3, 4, 2).contiguous().numpy()

    @property
    def clipped_fraction(self) -> float:
        """Fraction of output pixels whose max(R', G', B') was above PQ(peak_nits) before clipping."""
        return self.clipped / self.pixels if self.pixels else 0.0


def _run(
    converter: FrameConverter, items: Iterable[tuple[Any, np.ndarray]], batch: int
) -> Iterator[tuple[Any, np.ndarray]]:
    """``(payload, rgb_sdr)`` pairs in, ``(payload, rgb_pq)`` out, in order; ``batch`` windows per model call."""
    centre = converter.output_frames == 1
    pending: list[tuple[list[int], list[tuple[Any, np.ndarray]]]] = []

    def flush() -> Iterator[tuple[Any, np.ndarray]]:
        out = converter([[rgb for _, rgb in window] for _, window in pending])
        for (positions, window), frames in zip(pending, out, strict=True):
            for pos in positions:
                yield window[pos][0], frames[0 if centre else pos]
        pending.clear()

    for positions, window in temporal_windows(items, converter.frames, centre=centre):
        pending.append((positions, window))
        if len(pending) >= batch:
            yield from flush()
    if pending:
        yield from flush()


def convert_frames(
    frames: Iterable[np.ndarray],
    module: nn.Module,
    *,
    name: str = "",
    tile: int | None = None,
    overlap: int = 32,
    batch: int = 1,
    peak_nits: float = 1000.0,
) -> Iterator[np.ndarray]:
    """Convert a sequence of ``rgb_sdr`` frames ``(H, W, 3)`` (BT.709 R'G'B' float32 [0, 1]) with a loaded model.

    Yields one ``rgb_pq`` frame ``(H, W, 3)`` (ST 2084 PQ BT.2020 R'G'B', clipped to ``[0, PQ(peak_nits)]``) per
    input frame, in order, with the same windows, tiling and batching as :func:`convert_video`. ``name`` is
    the registered model name (it selects the automatic tile size).
    """
    converter = FrameConverter(module, name=name, tile=tile, overlap=overlap, peak_nits=peak_nits)
    for _, rgb_pq in _run(converter, ((None, np.asarray(f, dtype=np.float32)) for f in frames), batch):
        yield rgb_pq


# ----------------------------------------------------------------------------------------------- video


@dataclass
class _Timing:
    """Maps the source's frame times to output ticks: strictly increasing, starting at 0."""

    time_base: Fraction
    last: int | None = None
    repaired: int = 0

    def pts(self, seconds: float) -> int:
        tick = round(Fraction(seconds) / self.time_base)
        if self.last is not None and tick <= self.last:
            tick = self.last + 1
            self.repaired += 1
        self.last = tick
        return tick


def _check_options(peak_nits: float, tile: int | None, overlap: int, batch: int, crf: float, preset: str) -> None:
    if not 100.0 <= float(peak_nits) <= 10000.0:
        raise DatakitError(f"--peak must be between 100 and 10000 cd/m2 (ST 2084 range), got {peak_nits:g}")
    if tile is not None and tile != 0 and tile < 16:
        raise DatakitError(f"--tile must be 0 (whole frames) or at least 16 pixels, got {tile}")
    if overlap < 0 or (tile and overlap >= tile):
        raise DatakitError(f"--overlap must be >= 0 and smaller than the tile, got {overlap}")
    if batch < 1:
        raise DatakitError(f"--batch must be >= 1, got {batch}")
    if not 0 <= float(crf) <= 51:
        raise DatakitError(f"--crf must be between 0 and 51, got {crf:g}")
    if preset not in X265_PRESETS:
        raise DatakitError(f"--preset must be one of {', '.join(X265_PRESETS)}, got {preset!r}")


def _check_input(info: Any, force: bool) -> list[str]:
    """Refuse HDR (and non-BT.709) input unless ``force``; return notes."""
    from datakit.io.probe import require_sdr

    if info.kind != "sdr":
        if not force:
            raise UnsupportedFormatError(
                f"{info.path} is already HDR: {info.describe()}; refusing to convert it again "
                f"(pass --force to treat its signal as SDR anyway)"
            )
        return [f"--force: {info.describe()} input treated as a BT.709 SDR signal"]
    try:
        return require_sdr(info)
    except UnsupportedFormatError:
        if not force:
            raise
        return [f"--force: {info.describe()} input ({info.color_primaries} primaries) treated as BT.709 SDR"]


def _audio_streams(src: Path, container_format: str, dst: Path) -> list[int]:
    """Indices of the source's audio streams; :class:`UnsupportedFormatError` if the output cannot hold them."""
    import av

    from datakit.io.probe import open_input

    with contextlib.closing(open_input(src)) as source:
        audio = [(s.index, s.codec_context.name) for s in source.streams.audio]
    if not audio:
        return []
    with contextlib.closing(av.open(os.devnull, "w", format=container_format)) as probe_out:
        supported = probe_out.supported_codecs
    for _, codec in audio:
        if codec not in supported:
            raise UnsupportedFormatError(
                f"{dst}: the source's {codec} audio cannot be stored in {dst.suffix} without re-encoding; "
                f"use a .mkv output"
            )
    return [index for index, _ in audio]


@contextlib.contextmanager
def work_folder(dst: Path) -> Iterator[Path]:
    """The folder ``.<dst name>.partial`` beside ``dst`` that holds a conversion's temporary files, emptied
    first (what a killed conversion left there) and removed on exit.

    It is locked (``flock``) while the conversion runs: a second conversion to the same output is refused
    instead of removing the first one's files.
    """
    work = dst.parent / f".{dst.name}.partial"
    try:
        work.mkdir(parents=True, exist_ok=True)
        fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise write_failure(error, work) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputExistsError(f"{dst}: another datakit convert is writing it ({work} is locked)") from None
        for leftover in work.iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(fd)


_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM})


@contextlib.contextmanager
def _naming_refused_writes(dst: Path) -> Iterator[None]:
    """Turn a write the system refused (full disk, read-only folder) into one line naming the output."""
    try:
        yield
    except OSError as error:
        if error.errno in _WRITE_ERRNOS:
            raise write_failure(error, dst) from None
        raise


def _mux(video: Path, src: Path, audio: list[int], out_path: Path, container_format: str) -> None:
    """Copy the video packets of ``video`` and the ``audio`` streams of ``src`` into ``out_path`` (no re-encoding).

    Audio timestamps are shifted by the source video's start time, as the video's were, so sync is kept.
    Packets are interleaved by decoding time.
    """
    import av

    from datakit.io.probe import open_input

    with (
        contextlib.closing(av.open(str(video), "r")) as vin,
        contextlib.closing(open_input(src)) as ain,
        contextlib.closing(av.open(str(out_path), "w", format=container_format)) as out,
    ):
        v_in = vin.streams.video[0]
        v_out = out.add_stream_from_template(v_in)
        if container_format in ("mp4", "mov"):
            v_out.codec_context.codec_tag = "hvc1"  # as HDR10Writer writes it (the template does not copy the tag)
        src_video = ain.streams.video[0]
        start = Fraction(src_video.start_time or 0) * src_video.time_base
        a_in = [ain.streams[i] for i in audio]
        a_out = {s.index: out.add_stream_from_template(s) for s in a_in}
        shift = {s.index: round(start / s.time_base) for s in a_in}

        def video_packets() -> Iterator[tuple[float, int, Any]]:
            for packet in vin.demux(v_in):
                if packet.size:
                    packet.stream = v_out
                    yield float((packet.dts if packet.dts is not None else packet.pts) * packet.time_base), 0, packet

        def audio_packets() -> Iterator[tuple[float, int, Any]]:
            for packet in ain.demux(*a_in):
                if not packet.size:
                    continue
                index = packet.stream.index
                if packet.pts is not None:
                    packet.pts -= shift[index]
                if packet.dts is not None:
                    packet.dts -= shift[index]
                stamp = packet.dts if packet.dts is not None else packet.pts
                packet.stream = a_out[index]
                yield float((stamp or 0) * packet.time_base), 1, packet

        try:
            for _, _, packet in heapq.merge(video_packets(), audio_packets(), key=lambda e: (e[0], e[1])):
                out.mux(packet)
        except av.FFmpegError as error:
            raise UnsupportedFormatError(f"{out_path}: muxing video and audio failed ({error})") from None


def convert_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    model: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    peak_nits: float = 1000.0,
    tile: int | None = None,
    overlap: int = 32,
    device: str | None = None,
    batch: int = 1,
    crf: float = 18,
    preset: str = "medium",
    force: bool = False,
    overwrite: bool = False,
    x265_params: dict[str, Any] | str | None = None,
    progress: bool = False,
    callback: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Convert the SDR video ``src`` to the HDR10 video ``dst`` (``.mp4``, ``.mov``, ``.mkv`` or raw ``.hevc``).

    - ``model``: registered name (``None``: the checkpoint's model, or ``classical``); ``checkpoint``: a datakit
      checkpoint or state dict (default: the shipped one, see :func:`shipped_checkpoint`);
    - ``peak_nits``: output clip level (PQ) and SMPTE ST 2086 mastering display maximum, cd/m^2;
    - ``tile`` / ``overlap``: tiled inference (``None`` automatic, ``0`` whole frames); ``device``:
      ``auto``/``cpu``/``cuda``; ``batch``: windows per model call;
    - ``crf`` / ``preset`` / ``x265_params`` (``"k=v:k=v"`` or a dict, e.g. ``lossless=1``): libx265 settings;
    - ``force``: accept HDR or wide-gamut input as if it were BT.709 SDR; ``overwrite``: replace ``dst``;
    - ``progress``: tqdm bar on stderr; ``callback(frames_done)``: called after each frame is written.

    Returns ``frames``, ``seconds`` (wall time, model loading included), ``fps`` (frames per second of wall
    time), ``light_level`` (MaxCLL / MaxFALL written, cd/m^2), ``clipped_fraction``, ``audio_streams``,
    ``warnings`` and ``probe`` (:meth:`VideoInfo.to_dict` of the output), among others. Raises
    :class:`InputError` for an unreadable input, :class:`UnsupportedFormatError` for HDR input without
    ``force``, :class:`ModelError` for a missing or mismatched checkpoint and :class:`OutputExistsError` when
    ``dst`` exists without ``overwrite``.
    """
    from datakit.io.metadata import MasteringDisplay
    from datakit.io.probe import probe
    from datakit.io.reader import VideoReader
    from datakit.io.writer import CONTAINERS, HDR10Writer, refuse_x265_heap_bug

    started = time.perf_counter()
    src, dst = Path(src), Path(dst)
    _check_options(peak_nits, tile, overlap, batch, crf, preset)
    ext = dst.suffix.lower()
    if ext not in CONTAINERS or CONTAINERS[ext] == "h264":
        raise UnsupportedFormatError(f"{dst}: output must be .mp4, .mov, .mkv or .hevc, not {ext or '(none)'}")
    if dst.exists():
        if src.exists() and dst.resolve() == src.resolve():
            raise InputError(f"{dst}: the output would replace the input")
        if not overwrite:
            raise OutputExistsError(f"{dst} exists (pass --overwrite to replace it)")
    info = probe(src, count_frames=False)
    notes = _check_input(info, force)
    container_format = CONTAINERS[ext]
    audio: list[int] = []
    if info.has_audio:
        if container_format == "hevc":
            notes.append(f"{dst}: a raw HEVC stream holds no audio; the source's audio was not copied")
        else:
            audio = _audio_streams(src, container_format, dst)
    module, name, model_info = resolve_model(model, checkpoint, device)
    converter = FrameConverter(module, name=name, tile=tile, overlap=overlap, peak_nits=peak_nits)
    width, height = info.width - info.width % 2, info.height - info.height % 2
    if width < 2 or height < 2:
        raise UnsupportedFormatError(f"{src}: frame size {info.width}x{info.height} is too small")
    refuse_x265_heap_bug(dst, "libx265", width)
    if (width, height) != (info.width, info.height):
        notes.append(f"odd frame size {info.width}x{info.height}: cropped to {width}x{height} for 4:2:0 output")
    timing = _Timing(info.time_base)
    frames_done = 0

    from tqdm import tqdm

    with contextlib.ExitStack() as stack:
        work = stack.enter_context(work_folder(dst))
        final_tmp = work / f"output{ext}"
        video_path = work / f"video{ext}" if audio else final_tmp
        stack.enter_context(_naming_refused_writes(dst))
        reader = stack.enter_context(VideoReader(src, encoding="auto" if force else "sdr"))
        notes += [w for w in reader.warnings if w not in notes] + reader.assumptions
        bar = stack.enter_context(
            tqdm(total=info.frame_count or None, unit="frame", desc="convert", disable=not progress, leave=False)
        )
        writer = HDR10Writer(
            video_path,
            width,
            height,
            info.fps,
            crf=crf,
            preset=preset,
            mastering=MasteringDisplay.p3_d65(max_luminance=float(peak_nits)),
            x265_params=x265_params,
            time_base=timing.time_base,
        )
        with writer:
            items = ((timing.pts(f.time), f.rgb("float32")[:height, :width]) for f in reader)
            for pts, rgb_pq in _run(converter, items, batch):
                writer.write(rgb_pq, pts=pts)
                frames_done += 1
                bar.update(1)
                if callback is not None:
                    callback(frames_done)
            if frames_done == 0:
                raise InputError(f"{src}: no decodable video frame")
            bar.close()
            if progress:
                print(f"datakit: finishing the encode of {frames_done} frames (HEVC Main10, preset {preset}), "
                      "writing MaxCLL/MaxFALL...", file=sys.stderr)  # fmt: skip
        light = writer.light_level
        if audio:
            _mux(video_path, src, audio, final_tmp, container_format)
        os.replace(final_tmp, dst)
    if timing.repaired:
        notes.append(f"{timing.repaired} non-increasing frame timestamp(s) were moved one tick later")
    notes += converter.notes
    seconds = time.perf_counter() - started
    assert light is not None
    return {
        "input": str(src),
        "output": str(dst),
        "model": name,
        "checkpoint": model_info.get("checkpoint"),
        "device": model_info.get("device"),
        "frames": frames_done,
        "width": width,
        "height": height,
        "seconds": seconds,
        "fps": frames_done / seconds if seconds > 0 else 0.0,
        "peak_nits": float(peak_nits),
        "clipped_fraction": converter.clipped_fraction,
        "light_level": light.to_dict(),
        "tile": converter.tile_for(height, width),
        "audio_streams": len(audio),
        "warnings": notes,
        "probe": probe(dst).to_dict(),
    }
