"""``python -m sqlsafe``: the same entry point as the ``sqlsafe`` script.

Hooks and CI jobs can then run the interpreter they already know (``sys.executable -m sqlsafe``)
instead of finding a script on PATH.
"""

from __future__ import annotations

from ._launch import main  # first: it guards the imports against Ctrl-C

if __name__ == "__main__":
    main()
