"""Make entry points visible to importlib.metadata without pip: a module plus a dist-info folder."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path


def add_entry_point_plugin(root: Path, name: str, module: str, source: str | None = None) -> None:
    """Declare ``name = module`` in the ``medfm_robust`` group, writing ``module.py`` when given."""
    root.mkdir(parents=True, exist_ok=True)
    if source is not None:
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    dist = root / f"{module.replace('.', '_')}_plugin-0.0.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module}-plugin\nVersion: 0.0.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[medfm_robust]\n{name} = {module}\n")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    sys.modules.pop(module, None)
