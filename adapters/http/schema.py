"""OpenAPI post-processing: say in the schema what the service refuses.

drf-spectacular leaves objects open to any extra key; the bodies below are
validated strictly (an unknown key is a 400, so that a typo in ``target`` never
turns a private event into a public one), and the schema says so.
"""

from __future__ import annotations

from typing import Any

CLOSED_OBJECTS = ("TargetRequest", "QueryBodyRequest")


def close_strict_objects(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOK: no extra keys where the service refuses them."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in CLOSED_OBJECTS:
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    return result
