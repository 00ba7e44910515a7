/**
 * Median pruning, as Optuna's MedianPruner does it: after `warmup` epochs, once `startupTrials`
 * trials have completed, a trial whose best value so far is worse than the median of the
 * COMPLETED trials' values at the same epoch stops (pruned and running trials never set the
 * bar). Values are losses (lower is better).
 */
export class MedianPruner {
  private readonly curves = new Map<number, number[]>();
  private readonly completed = new Set<number>();
  constructor(
    private readonly warmup = 3,
    private readonly startupTrials = 1,
  ) {}

  /** Records `value` for `trial` at `epoch` (1-based) and says whether to stop it. */
  report(trial: number, epoch: number, value: number): boolean {
    let curve = this.curves.get(trial);
    if (!curve) this.curves.set(trial, (curve = []));
    curve[epoch - 1] = value;
    if (epoch <= this.warmup || this.completed.size < this.startupTrials) return false;
    const others: number[] = [];
    for (const t of this.completed) {
      const v = this.curves.get(t)?.[epoch - 1];
      if (t !== trial && v !== undefined && Number.isFinite(v)) others.push(v);
    }
    if (others.length === 0) return false;
    others.sort((a, b) => a - b);
    const mid = others.length / 2;
    const median = others.length % 2 ? others[Math.floor(mid)] : (others[mid - 1] + others[mid]) / 2;
    const bestSoFar = Math.min(...curve.slice(0, epoch).filter((v) => Number.isFinite(v)));
    return bestSoFar > median;
  }

  /** Marks `trial` as run to the end: from now on its curve sets the bar. */
  complete(trial: number): void {
    this.completed.add(trial);
  }
}
