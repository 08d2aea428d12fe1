"""The pictures in docs/ and the README, each drawn by a module here with matplotlib.

`make pictures` (`python -m docs.pictures`) draws them all again, offline; the PNGs are
committed. Each module's `draw(...)` writes one PNG and returns its path.
"""
