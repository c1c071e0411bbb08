"""The interaction value and the identity tuples derived from it (SPEC §1)."""

from __future__ import annotations

import hashlib

import msgspec

PropertyValue = str | int | float | bool | list[str | int | float]

UserKey = tuple[str, str]
"""(userType, userID)."""
OriginKey = tuple[str, str]
"""(originType, originID)."""
EntityKey = tuple[str, str]
"""(entityType, entityID)."""
EndpointKey = tuple[str, str, str, str, str]
"""(action, entityType, entityID, originType, originID)."""


class Interaction(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One accepted interaction, normalised: absent strings are ``""``.

    ``created_at`` is the event time and ``received_at`` the server's receipt time, both
    in epoch seconds. ``array_like`` keeps the journal encoding compact (no key names).
    """

    action: str
    user_id: str
    created_at: float
    received_at: float
    user_type: str = ""
    entity_type: str = ""
    entity_id: str = ""
    origin_type: str = ""
    origin_id: str = ""
    device_type: str = ""
    device_id: str = ""
    session_type: str = ""
    properties: dict[str, PropertyValue] = {}
    id: str = ""

    @property
    def user(self) -> UserKey:
        return (self.user_type, self.user_id)

    @property
    def origin(self) -> OriginKey:
        return (self.origin_type, self.origin_id)

    @property
    def entity(self) -> EntityKey:
        return (self.entity_type, self.entity_id)

    @property
    def endpoint(self) -> EndpointKey:
        return (self.action, self.entity_type, self.entity_id, self.origin_type, self.origin_id)


_id_encoder = msgspec.json.Encoder()


def key_id(kind: str, key: tuple[str, ...]) -> str:
    """A stable id for an identity tuple: the same on every restart and every instance.

    Hashing the JSON array of the tuple (not a joined string) keeps distinct tuples
    distinct whatever characters their parts contain.
    """
    digest = hashlib.blake2b(_id_encoder.encode([kind, *key]), digest_size=8)
    return digest.hexdigest()
