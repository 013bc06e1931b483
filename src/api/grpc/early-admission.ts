// Refuses a gRPC inference call when its headers arrive, before grpc-js reads and decodes its
// message, if it would be refused whatever model it names: while draining, and when every model's
// queue is full (src/api/edge: refusalBeforeReading). HTTP refuses in onRequest, before the body,
// because the model is in the path; a gRPC message carries its model name inside, so without this
// an overloaded server would read and decode every large message only to refuse it (the
// overload scenario's refusal latency, docs/reliability.md). Calls that get past it are admitted
// again by name in their handler.
import { Metadata, ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import type { Edge } from '../edge/index.ts';
import { REQUEST_ID_METADATA_KEY, settle } from './calls.ts';

export function earlyAdmission(edge: Edge, methods: ReadonlySet<string>): ServerInterceptor {
  return (method, call) => {
    if (!methods.has(method.path)) return new ServerInterceptingCall(call);
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, nextMetadata) {
            const refusal = edge.refusalBeforeReading();
            if (!refusal) {
              nextMetadata(metadata);
              return;
            }
            // One request at the edge all the same: counted, logged, its id echoed.
            const ctx = edge.begin('grpc', { requestId: metadata.get(REQUEST_ID_METADATA_KEY)[0], inference: true });
            const head = new Metadata();
            head.set(REQUEST_ID_METADATA_KEY, ctx.requestId);
            call.sendMetadata(head);
            const error = settle(ctx, method.path.slice(method.path.lastIndexOf('/') + 1), 'info', refusal)!;
            call.sendStatus({ code: error.code, details: error.details, metadata: error.metadata ?? new Metadata() });
          },
        });
      },
    });
  };
}
