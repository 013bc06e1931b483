// Counts requests in progress per key, so an unload can wait for the ones already accepted
// (still decoding images, queued or running) before it frees the model.
export class InflightTracker {
  private readonly counts = new Map<string, number>();
  private readonly waiters = new Map<string, Array<() => void>>();

  /** Runs op as one in-flight request of key. */
  async track<T>(key: string, op: () => Promise<T>): Promise<T> {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    try {
      return await op();
    } finally {
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left > 0) {
        this.counts.set(key, left);
      } else {
        this.counts.delete(key);
        for (const wake of this.waiters.get(key) ?? []) wake();
        this.waiters.delete(key);
      }
    }
  }

  /** Resolves once key has no request in flight. */
  idle(key: string): Promise<void> {
    if (!this.counts.has(key)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.waiters.get(key) ?? [];
      list.push(resolve);
      this.waiters.set(key, list);
    });
  }
}
