"""Replays recorded per-epoch validation curves through Optuna's MedianPruner.

Reads {"curves": [[...], ...], "values": [...], "orders": [[...], ...], "warmup": w, "budget": b}
(curves are
loss-oriented, lower is better; values are the trials' final losses) as JSON on stdin and prints,
per order, {"epochs": trained epochs, "pruned": trials pruned, "best": best final loss}, for all
trials ("all") and until b epochs are spent ("same_budget"), as JSON.
"""
import json
import math
import sys
import warnings

import optuna

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.ERROR)


def replay(cfg, budget):
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
                if epochs >= budget:
                    break
                epochs += 1
                trial.report(value, step)
                if trial.should_prune():
                    stopped = True
                    break
            if epochs >= budget and step < len(curve) - 1 and not stopped:
                break  # the budget ran out in the middle of this trial
            if stopped:
                pruned += 1
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                best = min(best, cfg["values"][i])
                study.tell(trial, cfg["values"][i])
        out.append({"epochs": epochs, "pruned": pruned, "best": best})
    return out


def main():
    cfg = json.load(sys.stdin)
    json.dump({"all": replay(cfg, math.inf), "same_budget": replay(cfg, cfg["budget"])}, sys.stdout)


main()
