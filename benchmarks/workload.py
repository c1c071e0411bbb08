"""A realistic, reproducible interaction mix shared by the scenarios."""

from __future__ import annotations

import random
from typing import Any

ACTIONS = ("view", "view", "view", "click", "close", "share", "conversion")


def interaction_dicts(
    count: int, *, users: int = 100_000, start: float, seed: int = 1
) -> list[dict[str, Any]]:
    """``count`` interactions as clients send them, one second apart from ``start``."""
    rng = random.Random(seed)
    items = []
    for number in range(count):
        action = rng.choice(ACTIONS)
        page = rng.randrange(200)
        properties: dict[str, Any] = {"ref": rng.choice(("google", "direct", "newsletter"))}
        if action == "conversion":
            properties["amount"] = round(rng.uniform(1, 200), 2)
        else:
            properties["screenWidth"] = rng.choice((375, 1280, 1920))
        items.append(
            {
                "action": action,
                "userID": f"u{rng.randrange(users)}",
                "userType": "visitor",
                "entityType": "product",
                "entityID": f"p{page % 50}",
                "originType": "page",
                "originID": f"/page/{page}",
                "deviceType": rng.choice(("mobile", "desktop")),
                "timestamp": start + number * 0.01,
                "properties": properties,
            }
        )
    return items
