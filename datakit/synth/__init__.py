"""Synthetic LDR-HDR video pairs: camera motion over HDR images, exposure, degradation, inverse TM.

Building blocks (pure functions and small dataclasses), one module each:

* :mod:`~datakit.synth.warp` - smooth random camera trajectories and border-free rendering;
* :mod:`~datakit.synth.exposure` - slow exposure curves, absolute scaling of relative images;
* :mod:`~datakit.synth.tonemap` - HDR -> SDR tone-mapping operators (Reinhard, Hable, BT.2446 A,
  BT.2390 EETF, camera S-curve);
* :mod:`~datakit.synth.gamut_map` - BT.2020 -> BT.709 clip and soft compression;
* :mod:`~datakit.synth.degrade` - the seeded degradation chain and the PQ target;
* :mod:`~datakit.synth.itm` - classical inverse tone mapping (BT.2446 C, BT.2408) for SDR video;
* :mod:`~datakit.synth.params` - default random ranges and their validation.

Submodules are imported on demand (OpenCV and PyAV load only when used).
"""
