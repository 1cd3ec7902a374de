"""Model registry: name -> "module:Class", and `create(name, **config)`.

Modules are imported only when a model is created, so listing models costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

from shoprec.recommend.base import Recommender

MODELS: dict[str, str] = {
    "pop": "shoprec.recommend.popularity:Popularity",
    "pop_decay": "shoprec.recommend.popularity:DecayedPopularity",
    "itemknn": "shoprec.recommend.itemknn:ItemKNN",
    "itemknn_pearson": "shoprec.recommend.itemknn:ItemKNNPearson",
    "userknn": "shoprec.recommend.userknn:UserKNN",
    "als": "shoprec.recommend.als:ALS",
    "bpr": "shoprec.recommend.bpr:BPR",
    "content": "shoprec.recommend.content:ContentBased",
    "lightgcn": "shoprec.recommend.lightgcn:LightGCN",
    "sasrec": "shoprec.recommend.sasrec:SASRec",
    "gru4rec": "shoprec.recommend.gru4rec:GRU4Rec",
}


def model_class(name: str) -> type[Recommender]:
    """The Recommender class registered under `name` (imports its module)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    module, qualname = MODELS[name].split(":")
    try:
        return getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError) as error:
        raise ImportError(f"model {name!r} ({MODELS[name]}) is not available: {error}") from error


def available() -> list[str]:
    """Registered names whose module imports (e.g. sasrec may not exist yet in a partial checkout)."""
    names = []
    for name in MODELS:
        try:
            model_class(name)
        except ImportError:
            continue
        names.append(name)
    return names


def create(name: str, **config: Any) -> Recommender:
    """A new, unfitted model: `create("itemknn", neighbours=50)`. Unknown config keys raise."""
    cls = model_class(name)
    # validate here: Recommender.__init__ applies overrides with model_copy, which ignores unknown keys
    config_object = cls.config_class.model_validate({**cls.config_class().model_dump(), **config})
    return cls(config_object)
