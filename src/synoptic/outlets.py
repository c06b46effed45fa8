"""Known outlets and wire services: names, short forms and domains (``data/outlets.json``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit


@dataclass(frozen=True)
class OutletRegistry:
    by_alias: dict[str, str]
    by_domain: dict[str, str]
    wire_forms: tuple[str, ...]  # the wire services' names and aliases as written

    @classmethod
    def bundled(cls) -> OutletRegistry:
        raw = json.loads(resources.files("synoptic").joinpath("data/outlets.json").read_text())
        by_alias: dict[str, str] = {}
        by_domain: dict[str, str] = {}
        for outlet in raw["outlets"]:
            by_alias[outlet["name"].casefold()] = outlet["name"]
            for alias in outlet["aliases"]:
                # Short all-caps forms ("ST", "AP") only match case-sensitively.
                key = alias if alias.isupper() and len(alias) <= 4 else alias.casefold()
                by_alias[key] = outlet["name"]
            for domain in outlet["domains"]:
                by_domain[domain] = outlet["name"]
        wires = frozenset(raw["wires"])
        forms = {
            form
            for outlet in raw["outlets"]
            if outlet["name"] in wires
            for form in (outlet["name"], *outlet["aliases"])
        }
        return cls(by_alias, by_domain, tuple(sorted(forms, key=lambda f: (-len(f), f))))

    def canonical(self, name: str) -> str | None:
        """The registry's name for ``name``, or None when it is not a known outlet."""
        name = name.strip()
        if name in self.by_alias:
            return self.by_alias[name]
        return self.by_alias.get(name.casefold())

    def wire_pattern(self) -> str:
        """A regular expression alternation of every wire service's names and short forms,
        longest first: short all-caps forms ("AP", "PA") case-sensitively, like
        :meth:`canonical`, the others in any case."""
        return "|".join(
            re.escape(f) if f.isupper() and len(f) <= 4 else f"(?i:{re.escape(f)})"
            for f in self.wire_forms
        )

    def from_url(self, url: str) -> str | None:
        """Outlet for a URL: a known outlet by domain, else the bare host name."""
        host = (urlsplit(url).hostname or "").casefold()
        if not host:
            return None
        host = host.removeprefix("www.")
        parts = host.split(".")
        for i in range(len(parts) - 1):
            candidate = ".".join(parts[i:])
            if candidate in self.by_domain:
                return self.by_domain[candidate]
        return host
