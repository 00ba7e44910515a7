"""Runs Optuna's TPE on the benchmark functions of bench/tune.ts, the same functions and budget.

Reads {"functions": [...], "seeds": [...], "trials": n, "startup": k, "modes": [...]} as JSON on
stdin and prints {function: {mode: {"best": [...], "ms_per_proposal": x}}} as JSON on stdout.
"""
import json
import math
import sys
import time
import warnings

import optuna

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.ERROR)

HARTMANN_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
HARTMANN_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
HARTMANN_ALPHA = [1.0, 1.2, 3.0, 3.2]
ARCH_PENALTY = {"mlp": 0.25, "cnn1d": 0.0, "gru": 0.1}
ARCH_LR = {"mlp": -2.0, "cnn1d": -2.5, "gru": -3.0}


def branin(t):
    x1 = t.suggest_float("x1", -5, 10)
    x2 = t.suggest_float("x2", 0, 15)
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def hartmann6(t):
    x = [t.suggest_float(f"x{i}", 0, 1) for i in range(6)]
    total = 0.0
    for i in range(4):
        inner = sum(HARTMANN_A[i][j] * (x[j] - HARTMANN_P[i][j] * 1e-4) ** 2 for j in range(6))
        total -= HARTMANN_ALPHA[i] * math.exp(-inner)
    return total


def mixed(t):
    lr = t.suggest_float("lr", 1e-4, 1e-1, log=True)
    units = t.suggest_int("units", 16, 256)
    dropout = t.suggest_float("dropout", 0.0, 0.5)
    arch = t.suggest_categorical("arch", ["mlp", "cnn1d", "gru"])
    return (
        0.3 * (math.log10(lr) - ARCH_LR[arch]) ** 2
        + ((units - 96) / 120) ** 2
        + 2 * (dropout - 0.2) ** 2
        + ARCH_PENALTY[arch]
    )


FUNCTIONS = {"branin": branin, "hartmann6": hartmann6, "mixed": mixed}


def main():
    cfg = json.load(sys.stdin)
    out = {}
    for name in cfg["functions"]:
        out[name] = {}
        for mode in cfg["modes"]:
            best = []
            seconds = 0.0
            proposals = 0
            for seed in cfg["seeds"]:
                sampler = optuna.samplers.TPESampler(
                    n_startup_trials=cfg["startup"], multivariate=(mode == "multivariate"), seed=seed
                )
                study = optuna.create_study(sampler=sampler)
                for _ in range(cfg["trials"]):
                    t0 = time.perf_counter()
                    trial = study.ask()
                    # Parameters are sampled lazily by suggest_*: time them inside the objective.
                    value = FUNCTIONS[name](trial)
                    seconds += time.perf_counter() - t0
                    proposals += 1
                    study.tell(trial, value)
                best.append(study.best_value)
            out[name][mode] = {"best": best, "ms_per_proposal": 1000 * seconds / proposals}
    json.dump(out, sys.stdout)


main()
