// Per-request policy for both transports (see request-edge.ts).
export { Edge, MAX_REQUEST_ID_LENGTH, RequestEdge, requestIdFrom, type BeginOptions, type EdgeDeps, type FinishLine } from './request-edge.ts';
export { defaultModelName, type ModelRef } from './model-ref.ts';
