"""hdrtv-datakit: reproducible, colour-correct SDR/HDR10 datasets and reference models."""

from datakit.errors import DatakitError

__all__ = ["DatakitError", "__version__"]
__version__ = "0.1.0"
