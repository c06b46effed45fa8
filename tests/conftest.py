from __future__ import annotations

from pathlib import Path

import pytest

from synoptic import Engine

ROOT = Path(__file__).resolve().parent.parent
PARADE = ROOT / "examples" / "parade"

QUAKE_A = """Strong earthquake strikes southern Chile

A magnitude 7.1 earthquake struck southern Chile on Tuesday, killing at least 12 people and
collapsing buildings in the port city of Puerto Montt, the national disaster agency said.

Rescue teams worked through the night to free residents trapped under rubble in the city's
old town, where several wooden houses caught fire after the quake.

The disaster agency said more than 300 aftershocks had been recorded and warned people to stay
away from damaged buildings until engineers had inspected them.

President Gabriel Boric declared a state of emergency in the Los Lagos region and said the army
would help distribute water and food to the families who lost their homes.
"""

QUAKE_B = """Deadly quake hits Japan's Noto peninsula

A magnitude 6.4 earthquake shook the Noto peninsula in central Japan on Saturday, killing
three people and cutting power to 40,000 homes, the Japan Meteorological Agency said.

Train services on the Hokuriku line were suspended while engineers checked the tracks, and
the nuclear regulator said no abnormalities had been found at nearby power plants.

Prime Minister Shigeru Ishiba told reporters the government had set up an emergency task force
and sent self-defense force troops to help clear landslides that blocked mountain roads.

Residents of coastal towns spent the night in school gyms as aftershocks continued into Sunday.
"""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def engine(db_url: str):
    with Engine(db_url) as eng:
        yield eng


@pytest.fixture
def parade_dir() -> Path:
    return PARADE
