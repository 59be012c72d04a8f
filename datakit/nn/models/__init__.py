"""Reference SDR-to-HDR models; importing this package registers them (see :mod:`datakit.nn.registry`).

One module per model: :mod:`~datakit.nn.models.agcm`, :mod:`~datakit.nn.models.classical`,
:mod:`~datakit.nn.models.dslnet`, :mod:`~datakit.nn.models.hdcfm`, :mod:`~datakit.nn.models.kpnmfi`,
:mod:`~datakit.nn.models.pdcg`, :mod:`~datakit.nn.models.resnet`.
"""

from datakit.nn.models import agcm, classical, dslnet, hdcfm, kpnmfi, pdcg, resnet

__all__ = ["agcm", "classical", "dslnet", "hdcfm", "kpnmfi", "pdcg", "resnet"]
