"""One module per ``datakit`` subcommand; each defines ``register(subparsers)``.

Modules here must import their heavy dependencies (torch, h5py, av...) inside the handler,
so that ``datakit --help`` and unrelated commands start fast.
"""
