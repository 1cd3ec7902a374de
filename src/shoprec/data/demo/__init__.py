"""The demo shop: a bilingual catalog and simulated shoppers with hidden, recoverable preferences.

`generate_demo(...)` builds everything offline and deterministically from a seed; `DemoShop`
holds products, users, events and the truth, plus `utility` and `simulate_session` for
offline evaluation and simulated A/B tests. `shoprec demo-data` writes it to disk.
"""

from shoprec.data.demo.shop import DemoShop, generate_demo

__all__ = ["DemoShop", "generate_demo"]
