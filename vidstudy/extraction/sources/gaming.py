"""Gaming sources: Atari 2600 games emulated by the Arcade Learning Environment (``ale-py`` ships the ROMs), each
played by a random agent that holds an action a while, from somewhere into the game."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .base import Source

# (ROM, subcategory): twenty-two games of several genres, each its own source
GAMES = (
    ("pong", "sports"), ("boxing", "sports"), ("tennis", "sports"), ("bowling", "sports"), ("ice_hockey", "sports"),
    ("skiing", "sports"), ("breakout", "arcade"), ("freeway", "arcade"), ("frogger", "arcade"), ("qbert", "arcade"),
    ("space_invaders", "shooter"), ("seaquest", "shooter"), ("asteroids", "shooter"), ("riverraid", "shooter"),
    ("centipede", "shooter"), ("ms_pacman", "maze"), ("pitfall", "platformer"), ("montezuma_revenge", "platformer"),
    ("donkey_kong", "platformer"), ("enduro", "racing"), ("tetris", "puzzle"), ("video_chess", "board"),
)
LICENCE = "© its publisher; ROM shipped with ale-py"


def _ale(game: str) -> Callable:
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        from ale_py import ALEInterface, LoggerMode, roms

        ALEInterface.setLoggerMode(LoggerMode.Error)
        ale = ALEInterface()
        ale.setInt("random_seed", int(rng.integers(2**31 - 1)))
        ale.loadROM(roms.get_rom_path(game))
        actions = ale.getMinimalActionSet()
        action, frames = actions[0], []
        warm = int(rng.integers(0, 600))  # start somewhere into the game
        for step in range(warm + 5 * n):  # 60 Hz emulation, every 5th frame kept: 12 frames/s
            if rng.random() < 0.1:
                action = actions[int(rng.integers(len(actions)))]
            ale.act(action)
            if ale.game_over():
                ale.reset_game()
            if step >= warm and (step - warm) % 5 == 0:
                frames.append(ale.getScreenRGB())
        return np.stack(frames[:n])

    return render


SOURCES = tuple(Source(f"ale:{g}", "Gaming", sub, 6, _ale(g), "an Atari 2600 game, emulated", "ale", "ale-py",
                       f"ale_py/roms/{g}.bin", LICENCE) for g, sub in GAMES)
