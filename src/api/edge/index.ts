// Per-request policy for both transports (see request-edge.ts).
export { Edge, RequestEdge, requestIdFrom, type BeginOptions, type EdgeDeps, type FinishLine } from './request-edge.ts';
export { defaultModelName, type ModelRef } from './model-ref.ts';
