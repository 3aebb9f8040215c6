"""``python -m sqlsafe``: the same entry point as the ``sqlsafe`` script.

Hooks and CI jobs can then run the interpreter they already know (``sys.executable -m sqlsafe``)
instead of finding a script on PATH.
"""

from __future__ import annotations

from .entry import main

if __name__ == "__main__":
    main()
