// The real clock. Globals are looked up on every call, not captured at import, so fake timers
// installed later (vitest's, sinon's) take effect. Timers are not unref'd: a wake-up timer may
// be the only thing between a caller awaiting a result and its batch (an in-process executor
// holds no handle of its own).
import type { Clock } from './types.ts';

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
