"""Team-draft interleaving (Radlinski et al. 2008): compare two rankers inside one result list.

Each round a coin decides which ranker picks first; each picks its best item not yet shown; the
team of every slot is remembered. A click credits the team that contributed the clicked item; the
session goes to the team with more credited clicks. Across sessions a binomial (sign) test on
the decisive sessions says whether one ranker wins more often than chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np
from scipy import stats

TEAM_A, TEAM_B = 0, 1


def team_draft(ranking_a: Sequence[Hashable], ranking_b: Sequence[Hashable], k: int,
               rng: np.random.Generator) -> tuple[list[Hashable], np.ndarray]:
    """Interleave two rankings into at most k items: (items, teams (len,) with 0 = A, 1 = B)."""
    items: list[Hashable] = []
    teams: list[int] = []
    shown: set[Hashable] = set()
    next_a = next_b = 0
    picks = [0, 0]

    def next_new(ranking: Sequence[Hashable], cursor: int) -> int:
        while cursor < len(ranking) and ranking[cursor] in shown:
            cursor += 1
        return cursor

    while len(items) < k:
        next_a, next_b = next_new(ranking_a, next_a), next_new(ranking_b, next_b)
        a_left, b_left = next_a < len(ranking_a), next_b < len(ranking_b)
        if not a_left and not b_left:
            break
        # The team with fewer picks goes next; a coin breaks ties (and a team with nothing left passes).
        a_turn = picks[TEAM_A] < picks[TEAM_B] or (picks[TEAM_A] == picks[TEAM_B] and rng.random() < 0.5)
        if (a_turn and a_left) or not b_left:
            item, team, next_a = ranking_a[next_a], TEAM_A, next_a + 1
        else:
            item, team, next_b = ranking_b[next_b], TEAM_B, next_b + 1
        items.append(item)
        teams.append(team)
        shown.add(item)
        picks[team] += 1
    return items, np.asarray(teams, dtype=np.int8)


def credit(teams: np.ndarray, clicked_positions: Sequence[int]) -> tuple[int, int]:
    """(clicks credited to A, clicks credited to B) for the clicked slots of one session."""
    positions = np.asarray(list(clicked_positions), dtype=np.int64)
    if positions.size and (positions.min() < 0 or positions.max() >= len(teams)):
        raise ValueError(f"clicked positions {positions.tolist()} outside the {len(teams)} interleaved slots")
    picked = np.asarray(teams)[positions]
    return int((picked == TEAM_A).sum()), int((picked == TEAM_B).sum())


def session_winner(teams: np.ndarray, clicked_positions: Sequence[int]) -> int:
    """+1 when B wins the session, -1 when A wins, 0 for a tie (including no clicks)."""
    a, b = credit(teams, clicked_positions)
    return int(np.sign(b - a))


@dataclass
class InterleavingResult:
    wins_a: int
    wins_b: int
    ties: int
    p_value: float
    winner: str  # "A", "B" or "none"

    @property
    def sessions(self) -> int:
        return self.wins_a + self.wins_b + self.ties

    @property
    def delta(self) -> float:
        """(wins_B - wins_A) / sessions, in [-1, 1]: > 0 means B is preferred."""
        return (self.wins_b - self.wins_a) / self.sessions if self.sessions else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"wins_a": self.wins_a, "wins_b": self.wins_b, "ties": self.ties, "sessions": self.sessions,
                "delta": self.delta, "p_value": self.p_value, "winner": self.winner}


def decide(outcomes: Sequence[int] | np.ndarray, alpha: float = 0.05) -> InterleavingResult:
    """Aggregate per-session outcomes (+1 B, -1 A, 0 tie): two-sided binomial sign test on the
    decisive sessions (H0: each ranker wins half of them)."""
    outcomes = np.asarray(outcomes, dtype=np.int64)
    wins_a, wins_b = int((outcomes < 0).sum()), int((outcomes > 0).sum())
    ties = int((outcomes == 0).sum())
    decisive = wins_a + wins_b
    p_value = float(stats.binomtest(wins_b, decisive, 0.5).pvalue) if decisive else 1.0
    winner = "none" if p_value >= alpha else ("B" if wins_b > wins_a else "A")
    return InterleavingResult(wins_a, wins_b, ties, p_value, winner)
