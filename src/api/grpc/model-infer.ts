// inference.GRPCInferenceService/ModelInfer and ModelStreamInfer: Open Inference Protocol
// inference over gRPC. The protocol's meaning is in ../oip; infer-wire.ts translates messages.
//
// ModelStreamInfer (tritonclient's start_stream / async_stream_infer) answers each request
// message with one ModelStreamInferResponse, in completion order, batched with everything else;
// a failed request answers with error_message set (and the request's id) and the stream goes on.
// Each message is a request of its own at the edge: admitted, counted, logged, given the stream's
// deadline. At most MAX_STREAM_INFLIGHT messages of one stream are in progress; beyond that the
// stream is paused, so HTTP/2 flow control holds the client back instead of server memory.
import type { handleBidiStreamingCall, ServerDuplexStream } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { MAX_REQUEST_ID_LENGTH, type RequestEdge } from '../edge/index.ts';
import type { ApiDeps } from '../deps.ts';
import { infer } from '../oip/index.ts';
import { beginCall, cancellation, checkDecoded, REQUEST_ID_METADATA_KEY, settle, type CallHandler } from './calls.ts';
import type { ModelInferRequest__Output } from './generated/inference/ModelInferRequest.ts';
import type { ModelInferResponse } from './generated/inference/ModelInferResponse.ts';
import type { ModelStreamInferResponse } from './generated/inference/ModelStreamInferResponse.ts';
import { toInferRequest, toModelInferResponse } from './infer-wire.ts';
import { UndecodableRequest } from './proto.ts';

const MAX_STREAM_INFLIGHT = 64;

export function modelInfer(deps: ApiDeps): CallHandler<ModelInferRequest__Output, ModelInferResponse> {
  const { service, config } = deps;
  const limits = { maxTensorElements: config.MAX_TENSOR_ELEMENTS, maxImagesPerRequest: config.MAX_IMAGES_PER_REQUEST };
  return async (message, ctx) => {
    const request = toInferRequest(message);
    ctx.admit(request.modelName, request.modelVersion);
    const response = await infer(service, request, ctx, limits);
    return toModelInferResponse(response, message.raw_input_contents.length > 0);
  };
}

/** `<stream id>:<n>`, the stream id cut so that the whole stays a valid request id. */
function messageId(streamId: string, n: number): string {
  const suffix = `:${n}`;
  return `${streamId.slice(0, MAX_REQUEST_ID_LENGTH - suffix.length)}${suffix}`;
}

type Stream = ServerDuplexStream<ModelInferRequest__Output | UndecodableRequest, ModelStreamInferResponse>;

export function modelStreamInfer(deps: ApiDeps): handleBidiStreamingCall<ModelInferRequest__Output, ModelStreamInferResponse> {
  const { edge } = deps;
  const run = modelInfer(deps);
  return (call: Stream) => {
    // The stream is not what a drain waits for: its messages are (an open idle stream would hold it).
    const streamCtx = beginCall(edge, call, { inference: false, counted: false });
    const head = new Metadata();
    head.set(REQUEST_ID_METADATA_KEY, streamCtx.requestId);
    call.sendMetadata(head);
    const inflight = new Set<RequestEdge>();
    let received = 0;
    let ended = false;
    const maybeEnd = (): void => {
      if (!ended || inflight.size > 0) return;
      settle(streamCtx, 'ModelStreamInfer', 'info', undefined);
      if (!call.cancelled) call.end();
    };

    call.on('data', (message: ModelInferRequest__Output | UndecodableRequest) => {
      const ctx = beginCall(edge, call, { inference: true, requestId: messageId(streamCtx.requestId, received++) });
      inflight.add(ctx);
      if (inflight.size >= MAX_STREAM_INFLIGHT) call.pause();
      const id = message instanceof UndecodableRequest ? '' : message.id;
      Promise.resolve()
        .then(() => run(checkDecoded(message), ctx, call.metadata))
        .then(
          (response) => {
            const error = settle(ctx, 'ModelStreamInfer', 'info', undefined);
            return error ? { error_message: error.details, infer_response: { id } } : { error_message: '', infer_response: response };
          },
          (err: unknown) => ({ error_message: settle(ctx, 'ModelStreamInfer', 'info', err)!.details, infer_response: { id } }),
        )
        .then((answer) => {
          if (!call.cancelled && !call.writableEnded) call.write(answer);
          inflight.delete(ctx);
          if (call.isPaused() && inflight.size < MAX_STREAM_INFLIGHT) call.resume();
          maybeEnd();
        });
    });
    call.on('end', () => {
      ended = true;
      maybeEnd();
    });
    call.on('cancelled', () => {
      const reason = cancellation(streamCtx);
      streamCtx.abort(reason);
      for (const ctx of inflight) ctx.abort(reason);
      ended = true;
      maybeEnd();
    });
    call.on('error', () => {
      // A broken stream (e.g. the client reset it): what was in flight is cancelled.
      for (const ctx of inflight) ctx.abort(cancellation(ctx));
    });
  };
}
