"""A PyTorch dataset over datakit shards, and the sampler that splits it across DDP ranks.

:class:`ShardDataset` indexes the samples of one split in one or more output folders (``datakit build`` /
``datakit synth``, or any folder of ``<split>/*.h5`` shards) and returns, for each sample::

    {"sdr": float32 (T, 3, H, W) BT.709 R'G'B' signal in [0, 1]   (uint8 / 255),
     "hdr": float32 (T, 3, H, W) SMPTE ST 2084 PQ BT.2020 R'G'B' code values in [0, 1]   (uint16 / 65535),
     "sample_id": str, "index": int}

HDF5 files are opened lazily in the process that reads them (each DataLoader worker gets its own handles; a
handle inherited through ``fork`` is never used) and :func:`worker_init_fn` sets ``BLOSC_NTHREADS=1`` and one
torch/OpenCV thread per worker.

Randomness (frame window, crop position, flips, rotations) comes from a per-draw seed: :class:`ShardSampler` yields
``(index, seed)`` pairs, so a given position in the training stream always produces the same crop whatever the
number of workers, and a resumed run sees exactly the batches an uninterrupted one would have. A plain integer
index gets a seed derived from ``(seed, index)`` (the same crop each time: fine for validation).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from datakit.errors import DatakitError, InputError, StoreError
from datakit.store import ShardReader, list_shards
from datakit.store.records import check_id, read_manifest

__all__ = ["SampleRef", "ShardDataset", "ShardSampler", "collate", "iterate", "worker_init_fn"]


@dataclass(frozen=True)
class SampleRef:
    """Where one sample lives: root number, shard file, index in it, and its shape."""

    root: int
    shard: str
    index: int
    frames: int
    height: int
    width: int
    sample_id: str


def _index_root(root: Path, root_number: int, split: str) -> list[SampleRef]:
    """Sample references of one root: from manifest.jsonl when there is one, else by opening its shards."""
    if not root.exists():
        raise InputError(f"{root}: data folder not found")
    refs: list[SampleRef] = []
    if (root / "manifest.jsonl").is_file():
        for rec in read_manifest(root):  # records checked where they are read (datakit.store.records)
            if rec["split"] == split:
                refs.append(
                    SampleRef(root_number, str(root / rec["shard"]), rec["index"], rec["frames"], rec["height"],
                              rec["width"], rec["sample_id"])
                )  # fmt: skip
        return refs
    for path in list_shards(root, split):
        reader = ShardReader(path)
        try:
            t, h, w = reader.shape
            ids = reader.file["sample_id"][:]
            refs.extend(SampleRef(root_number, str(path), i, t, h, w, ids[i].decode()) for i in range(len(reader)))
        finally:
            reader.close()
    return refs


def _window(count: int, take: int, centre: int) -> int:
    """First frame of a ``take``-frame window centred on ``centre`` and kept inside ``[0, count)``."""
    return int(min(max(centre - take // 2, 0), count - take))


class ShardDataset(Dataset):
    """Samples of one split of one or more shard roots (see the module docstring).

    ``frames``: frames per item (``None``: all stored frames; samples with fewer are skipped). ``centre``: the
    frame the window is centred on: ``"middle"`` (stored ``T // 2``), ``"random"`` (anywhere the window fits) or a
    frame index. ``crop``: square crop size (samples smaller than the crop are skipped), taken at a random place
    (``crop_mode="random"``) or in the middle (``"centre"``). ``augment``: random horizontal/vertical flips and
    90-degree rotations (rotations only for square windows), the same for SDR, HDR and every frame.
    ``weights``: relative share of each root in a :class:`ShardSampler` epoch (``None``: proportional to size).
    """

    def __init__(
        self,
        roots: Sequence[str | os.PathLike[str]],
        split: str = "train",
        frames: int | None = None,
        *,
        centre: str | int = "middle",
        crop: int | None = None,
        crop_mode: str = "random",
        augment: bool = True,
        weights: Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(roots, str | os.PathLike):
            roots = [roots]
        self.roots = [Path(r) for r in roots]
        if not self.roots:
            raise InputError("ShardDataset: no data folders given")
        if weights is not None and (len(weights) != len(self.roots) or any(w < 0 for w in weights)):
            raise InputError("ShardDataset: one weight >= 0 per data folder is required")
        if crop_mode not in ("random", "centre"):
            raise ValueError("crop_mode must be 'random' or 'centre'")
        if not (centre in ("middle", "random") or (isinstance(centre, int) and centre >= 0)):
            raise ValueError("centre must be 'middle', 'random' or a frame index")
        self.split = check_id(split, "split")  # a folder name under shards/
        self.frames = frames
        self.centre = centre
        self.crop = crop
        self.crop_mode = crop_mode
        self.augment = augment
        self.seed = int(seed)
        refs: list[SampleRef] = []
        for number, root in enumerate(self.roots):
            refs.extend(_index_root(root, number, split))
        total = len(refs)
        self.items = [r for r in refs if self._fits(r)]
        self.skipped = total - len(self.items)
        if not self.items:
            reason = f" ({self.skipped} skipped: fewer than {frames} frames or smaller than {crop} px)" if total else ""
            raise StoreError(f"no usable '{split}' samples in {', '.join(map(str, self.roots))}{reason}")
        counts = np.bincount([r.root for r in self.items], minlength=len(self.roots))
        self.root_items = [np.flatnonzero([r.root == k for r in self.items]) for k in range(len(self.roots))]
        if weights is None:
            self.weights = counts / counts.sum()
        else:
            w = np.asarray(weights, dtype=np.float64) * (counts > 0)
            if w.sum() <= 0:
                raise StoreError("ShardDataset: every weighted data folder is empty for this split")
            self.weights = w / w.sum()
        self._readers: dict[str, ShardReader] = {}
        self._pid = os.getpid()

    def _fits(self, ref: SampleRef) -> bool:
        if self.frames is not None and ref.frames < self.frames:
            return False
        if isinstance(self.centre, int) and self.centre >= ref.frames:
            return False
        return not (self.crop is not None and (ref.height < self.crop or ref.width < self.crop))

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_readers"] = {}
        return state

    def reader(self, shard: str) -> ShardReader:
        """This process's reader of ``shard`` (handles inherited from another process are dropped)."""
        if os.getpid() != self._pid:
            self._readers = {}
            self._pid = os.getpid()
        reader = self._readers.get(shard)
        if reader is None:
            reader = self._readers[shard] = ShardReader(shard)
        return reader

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers = {}

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(key, tuple | list):
            index, seed = int(key[0]), int(key[1])
        else:
            index = int(key)
            seed = int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0])
        ref = self.items[index]
        rng = np.random.default_rng(seed)
        take = ref.frames if self.frames is None else self.frames
        if self.centre == "random":
            t0 = int(rng.integers(0, ref.frames - take + 1))
        else:
            c = ref.frames // 2 if self.centre == "middle" else int(self.centre)
            t0 = _window(ref.frames, take, c)
        h = w = self.crop
        if self.crop is None:
            h, w, y0, x0 = ref.height, ref.width, 0, 0
        elif self.crop_mode == "random":
            y0 = int(rng.integers(0, ref.height - h + 1))
            x0 = int(rng.integers(0, ref.width - w + 1))
        else:
            y0, x0 = (ref.height - h) // 2, (ref.width - w) // 2
        reader = self.reader(ref.shard)
        if reader.shape != (ref.frames, ref.height, ref.width):
            raise StoreError(f"{ref.shard}: holds {'x'.join(map(str, reader.shape))} samples, the manifest says "
                             f"{ref.frames}x{ref.height}x{ref.width}; run `datakit verify`")  # fmt: skip
        # (T, h, w, 3) uint8 / uint16 windows; a damaged chunk raises StoreError naming the shard and sample
        sdr, hdr = reader.window(ref.index, slice(t0, t0 + take), slice(y0, y0 + h), slice(x0, x0 + w))
        if self.augment:
            sdr, hdr = _augment(sdr, hdr, rng)
        return {
            "sdr": torch.from_numpy(_to_chw(sdr, 255.0)),
            "hdr": torch.from_numpy(_to_chw(hdr, 65535.0)),
            "sample_id": ref.sample_id,
            "index": index,
        }


def _augment(sdr: np.ndarray, hdr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Same random flips and 90-degree rotation on ``(T, H, W, 3)`` SDR and HDR."""
    hflip, vflip = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    k = int(rng.integers(0, 4))
    if sdr.shape[1] != sdr.shape[2]:
        k = 2 * (k % 2)  # only 0 or 180 degrees keep a non-square window's shape
    out = []
    for a in (sdr, hdr):
        if hflip:
            a = a[:, :, ::-1]
        if vflip:
            a = a[:, ::-1]
        if k:
            a = np.rot90(a, k, axes=(1, 2))
        out.append(a)
    return out[0], out[1]


def _to_chw(a: np.ndarray, scale: float) -> np.ndarray:
    """``(T, H, W, 3)`` integer codes -> contiguous float32 ``(T, 3, H, W)`` in [0, 1]."""
    return np.ascontiguousarray(np.moveaxis(a, -1, 1), dtype=np.float32) / np.float32(scale)


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors (all items must share one shape: use a crop), keep ids as a list."""
    return {
        "sdr": torch.stack([it["sdr"] for it in items]),
        "hdr": torch.stack([it["hdr"] for it in items]),
        "sample_id": [it["sample_id"] for it in items],
        "index": torch.tensor([it["index"] for it in items]),
    }


def iterate(loader: Iterable[Any]) -> Iterator[Any]:
    """The batches of a DataLoader; a :class:`DatakitError` raised in a worker process (torch re-raises it with
    the worker's traceback in its message) comes back with its own one-line message."""
    iterator = iter(loader)
    try:
        yield from iterator
    except DatakitError as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        if len(lines) <= 1:
            raise
        last = lines[-1]
        raise type(error)(last.split(": ", 1)[1] if ": " in last else last) from None
    finally:
        # The error's traceback keeps the iterator alive: stop its workers now, or the interpreter's exit
        # terminates them and torch's SIGCHLD handler reports that as a second error (with a traceback).
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: one Blosc, torch and OpenCV thread per worker (handles open lazily afterwards)."""
    os.environ["BLOSC_NTHREADS"] = "1"
    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass


class ShardSampler(Sampler):
    """Deterministic stream of ``(index, seed)`` draws, split across DDP ranks.

    Epoch ``e`` is a permutation of all samples (``shuffle``), or, when the dataset has root weights, ``len`` draws
    that pick a root by weight and then a sample of that root uniformly; both come from ``(seed, e)`` only. Rank
    ``r`` of ``world_size`` takes every ``world_size``-th draw starting at ``r`` (the tail that does not divide
    evenly is dropped, so ranks stay in step). ``start`` skips that many of this rank's draws (resume);
    ``infinite`` chains epochs forever, otherwise one epoch is yielded (``limit`` caps it).
    """

    def __init__(
        self,
        dataset: ShardDataset,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        infinite: bool = True,
        start: int = 0,
        limit: int | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError("need 0 <= rank < world_size")
        self.dataset = dataset
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle, self.infinite = int(seed), shuffle, infinite
        self.start = int(start)
        n = len(dataset) if limit is None else min(limit, len(dataset))
        self.draws = n
        self.per_rank = n // world_size
        if self.per_rank == 0:
            raise StoreError(f"{n} '{dataset.split}' samples cannot be split across {world_size} processes")

    def __len__(self) -> int:
        """Draws per rank in one epoch (an infinite sampler repeats epochs)."""
        return self.per_rank

    def epoch_draws(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, seeds) of all ranks for ``epoch``, before the rank split."""
        rng = np.random.default_rng([self.seed, epoch])
        ds = self.dataset
        n = len(ds)
        if len(ds.roots) > 1 and self.shuffle and not np.allclose(ds.weights, _size_weights(ds)):
            roots = rng.choice(len(ds.roots), size=self.draws, p=ds.weights)
            idx = np.empty(self.draws, dtype=np.int64)
            for k, members in enumerate(ds.root_items):
                chosen = roots == k
                if chosen.any():
                    idx[chosen] = members[rng.integers(0, len(members), int(chosen.sum()))]
        elif self.shuffle:
            idx = rng.permutation(n)[: self.draws]
        else:
            idx = np.arange(self.draws)
        seeds = rng.integers(0, 2**62, size=self.draws, dtype=np.int64)
        return idx, seeds

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = divmod(self.start, self.per_rank) if self.infinite else (0, min(self.start, self.per_rank))
        while True:
            idx, seeds = self.epoch_draws(epoch)
            stop = self.per_rank * self.world_size
            mine_idx, mine_seed = idx[self.rank : stop : self.world_size], seeds[self.rank : stop : self.world_size]
            for i in range(offset, self.per_rank):
                yield int(mine_idx[i]), int(mine_seed[i])
            if not self.infinite:
                return
            epoch, offset = epoch + 1, 0


def _size_weights(ds: ShardDataset) -> np.ndarray:
    counts = np.array([len(m) for m in ds.root_items], dtype=np.float64)
    return counts / counts.sum()
