"""Exceptions shared across the engine."""


class ShoprecError(Exception):
    """Base class for every error shoprec raises on purpose."""


class MissingExtraError(ShoprecError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"{module} is required for this feature: pip install 'shoprec[{extra}]'")


class NotBuiltError(ShoprecError):
    """No complete artifact version exists yet: run `shoprec build`."""


def require(module: str, extra: str):
    """Import an optional module or raise an error that names the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(module, extra) from exc
