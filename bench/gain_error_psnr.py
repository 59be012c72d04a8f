"""How swscale's rgb48le gain error shifts PSNR: the same predictions scored against corrected and uncorrected
ground truth.

Fixtures from the CC0 EXR images (``--images``, default /work/shared/data/hdri): each scaled to ``--width``,
median luminance 30 cd/m^2 (highlights up to 4000), encoded as HDR10 (x265), then extracted twice: with
``datakit extract`` (correct BT.2100 conversion) and with PyAV's ``to_ndarray(format="rgb48le")`` (swscale).
The SDR input is ITU-R BT.2446 method A of the same frame. Each ground truth is imported as a test split
(``datakit import pairs``: as extracted; swscale; swscale with ``--fix``) and scored with ``datakit eval``'s
function on the classical model. Two more predictions are scored against each ground truth: the correct frames
themselves ("perfect") and the correct frames plus Gaussian noise of sigma 0.0126 in PQ ("38 dB": about the
papers' level on HDRTV1K, an unbiased error).

    python bench/gain_error_psnr.py [--width 960]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def make_pairs(images: Path, width: int, root: Path) -> list[str]:
    import av
    import cv2

    from datakit.color.gamut import convert_gamut, luminance_weights
    from datakit.color.transfer import bt1886_inverse_eotf, st2084_eotf, st2084_inverse_eotf
    from datakit.io.extract import extract_frames
    from datakit.io.images import read_hdr_image, write_png8, write_png16_pq
    from datakit.io.writer import HDR10Writer
    from datakit.synth.tonemap import bt2446a

    names = []
    for folder in ("correct/hdr", "correct/sdr", "swscale/hdr", "swscale/sdr"):
        (root / folder).mkdir(parents=True)
    for exr in sorted(images.glob("*.exr")):
        image = read_hdr_image(exr)
        rgb = np.maximum(convert_gamut(image.rgb_linear, image.primaries, "bt2020"), 0.0).astype(np.float32)
        height = round(width * rgb.shape[0] / rgb.shape[1] / 2) * 2
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        lum = rgb @ luminance_weights("bt2020").astype(np.float32)
        rgb = np.minimum(rgb * np.float32(30.0 / max(float(np.median(lum)), 1e-6)), 4000.0)
        pq = np.clip(st2084_inverse_eotf(rgb), 0.0, 1.0).astype(np.float32)
        video = root / f"{exr.stem}.mkv"
        with HDR10Writer(video, width, height, 24, preset="ultrafast", crf=8) as writer:
            writer.write(pq)
            writer.write(pq)
        (frame_file,) = extract_frames(video, root / f"x_{exr.stem}", frames=[0], progress=False)
        frame_file.rename(root / "correct" / "hdr" / f"{exr.stem}.png")
        with av.open(str(video)) as container:
            frame = next(container.decode(video=0))
            write_png16_pq(root / "swscale" / "hdr" / f"{exr.stem}.png", frame.to_ndarray(format="rgb48le"))
        display = np.clip(convert_gamut(bt2446a(st2084_eotf(pq)), "bt2020", "bt709"), 0.0, 1.0)
        sdr = np.rint(np.clip(bt1886_inverse_eotf(display, white_nits=1.0), 0, 1) * 255).astype(np.uint8)
        for side in ("correct", "swscale"):
            write_png8(root / side / "sdr" / f"{exr.stem}.png", sdr)
        names.append(exr.stem)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="/work/shared/data/hdri", type=Path)
    parser.add_argument("--width", type=int, default=960)
    args = parser.parse_args()
    from datakit.audit.run import read_codes
    from datakit.importers.build import import_dataset
    from datakit.metrics import image_metrics
    from datakit.nn.evaluate import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = make_pairs(args.images, args.width, root)
        truths = {"as extracted (correct)": ("correct", False), "swscale rgb48le": ("swscale", False),
                  "swscale rgb48le, --fix": ("swscale", True)}  # fmt: skip
        print(f"{len(names)} frames at {args.width} px wide; classical model, PQ codes, mean of per-image values")
        print(
            f"{'ground truth':24s} classical: {'PSNR':>7s} {'dE_ITP':>7s} | perfect: {'PSNR':>6s} {'dE_ITP':>6s}"
            f" | 38 dB: {'PSNR':>6s} {'dE_ITP':>6s}"
        )
        for label, (side, fix) in truths.items():
            out = root / f"out_{side}_{fix}"
            import_dataset("pairs", root / side, out, split="test", fix=fix, report=False)
            m = evaluate("classical", None, [out], tile=None)["metrics"]
            perfect, noisy = [], []
            for n, hdr in _stored(out):
                correct = read_codes(root / "correct" / "hdr" / f"{n}.png")
                perfect.append(image_metrics(correct, hdr))
                noise = np.random.default_rng(len(noisy)).normal(0.0, 0.0126, correct.shape)
                noisy.append(image_metrics(np.clip(correct / 65535.0 + noise, 0.0, 1.0), hdr))
            row = [np.mean([p[k] for p in rows]) for rows in (perfect, noisy) for k in ("psnr", "delta_e_itp")]
            print(
                f"{label:24s} {'':10s} {m['psnr']:7.3f} {m['delta_e_itp']:7.3f} | {'':8s} {row[0]:6.2f} "
                f"{row[1]:6.3f} | {'':6s} {row[2]:6.3f} {row[3]:6.3f}"
            )


def _stored(out: Path):
    from datakit.store.output import read_manifest
    from datakit.store.shards import ShardReader

    for record in read_manifest(out):
        _, hdr = ShardReader(out / record["shard"]).arrays(record["index"])
        yield record["meta"]["import"]["hdr_file"].removesuffix(".png"), hdr[0]


if __name__ == "__main__":
    main()
