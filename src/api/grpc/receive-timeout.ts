// REQUEST_TIMEOUT_MS for gRPC: a call whose request message has not fully arrived within the
// limit is ended with DEADLINE_EXCEEDED, the way Node answers a slow HTTP request with 408.
// Without it a client could hold a stream (and the message buffer) open indefinitely by
// sending a large message a few bytes at a time; grpc-js has no such limit of its own. The
// clock stops when the request is complete: for unary and server-streaming calls when the client
// half-closes (a unary handler runs only then), for client-streaming calls (reflection) at the
// first message. Answering may take longer; streams (health Watch) stay open once started.
import { ServerInterceptingCall, status, type ServerInterceptor } from '@grpc/grpc-js';
import type { Logger } from '../../logger.ts';

export function receiveTimeout(timeoutMs: number, log: Logger): ServerInterceptor {
  return (method, call) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      clearTimeout(timer);
      timer = undefined;
    };
    return new ServerInterceptingCall(call, {
      start(next) {
        timer = setTimeout(() => {
          timer = undefined;
          log.info({ method: method.path, peer: call.getPeer(), limit: 'REQUEST_TIMEOUT_MS', max: timeoutMs }, 'grpc request not received in time');
          call.sendStatus({
            code: status.DEADLINE_EXCEEDED,
            details: `the request message did not arrive within REQUEST_TIMEOUT_MS (${timeoutMs} ms)`,
          });
        }, timeoutMs);
        next({
          onReceiveMessage(message, nextMessage) {
            if (method.requestStream) stop();
            nextMessage(message);
          },
          onReceiveHalfClose(nextHalfClose) {
            stop();
            nextHalfClose();
          },
          onCancel: stop,
        });
      },
      sendStatus(callStatus, nextStatus) {
        stop();
        nextStatus(callStatus);
      },
    });
  };
}
