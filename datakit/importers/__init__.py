"""``datakit import``: existing frame datasets (HDRTV1K, HDRTV4K, generic HDR/SDR pairs) into the output folder.

:mod:`.layouts` finds the pairs of each layout, :mod:`.schema` is the ``kind = "import"`` recipe, :mod:`.build`
reads, audits (and with ``--fix`` repairs) each pair, tiles it and writes it through the one shard writer.
"""
