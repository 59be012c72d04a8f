"""Regenerate tests/data/hdri: 256x128 copies of the CC0 HDR images in ../shared/data/hdri (area-downsized)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import OpenEXR

from datakit.io.images import read_hdr_image

HERE = Path(__file__).resolve().parent / "hdri"


def write_exr(path: Path, rgb: np.ndarray) -> None:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    channels = {"RGB": np.ascontiguousarray(rgb.astype(np.float16))}
    with OpenEXR.File(header, channels) as exr:
        exr.write(str(path))


def main(source: str = "../shared/data/hdri") -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    for exr in sorted(Path(source).glob("*.exr")):
        image = read_hdr_image(exr)
        small = cv2.resize(image.rgb_linear, (256, 128), interpolation=cv2.INTER_AREA)
        write_exr(HERE / exr.name, small)
    shutil.copy(Path(source) / "LICENSE.txt", HERE / "LICENSE.txt")


if __name__ == "__main__":
    main(*sys.argv[1:])
