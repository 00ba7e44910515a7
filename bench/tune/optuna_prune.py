"""Replays recorded per-epoch validation curves through Optuna's MedianPruner.

Reads {"curves": [[...], ...], "values": [...], "orders": [[...], ...], "warmup": w} (curves are
loss-oriented, lower is better; values are the trials' final losses) as JSON on stdin and prints,
per order, {"epochs": trained epochs, "pruned": trials pruned, "best": best final loss} as JSON.
"""
import json
import sys
import warnings

import optuna

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.ERROR)


def main():
    cfg = json.load(sys.stdin)
    out = []
    for order in cfg["orders"]:
        study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_warmup_steps=cfg["warmup"]))
        epochs = 0
        pruned = 0
        best = float("inf")
        for i in order:
            trial = study.ask()
            curve = cfg["curves"][i]
            stopped = False
            for step, value in enumerate(curve):
                epochs += 1
                trial.report(value, step)
                if trial.should_prune():
                    stopped = True
                    break
            if stopped:
                pruned += 1
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                best = min(best, cfg["values"][i])
                study.tell(trial, cfg["values"][i])
        out.append({"epochs": epochs, "pruned": pruned, "best": best})
    json.dump(out, sys.stdout)


main()
