"""Reading the TOML files under config/: one place for the errors every loader shares."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError


def read_toml(path: Path, *, missing: str | None = None) -> dict[str, Any]:
    """The parsed file; ConfigError naming the file when it is absent or not valid TOML.

    ``missing`` explains why the file is needed; without it an absent file reads as empty.
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if missing is None:
            return {}
        raise ConfigError(f"{path}: missing ({missing})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
