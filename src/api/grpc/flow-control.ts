// HTTP/2 flow-control windows for the gRPC port. grpc-js (1.14) has no server option for them,
// so Node's defaults apply: 64 KiB per stream and 64 KiB per connection. A client may then send
// only 64 KiB of a request before waiting for a WINDOW_UPDATE, which the server sends when its
// event loop has read the data. A 150 KiB UINT8 224×224×3 image (600 KiB as FP32) therefore
// needs several round trips through the event loop; when the loop is busy (overload) every call
// waits in flow control, refusals included: in npm run test:chaos (DenseNet-121, 10× capacity)
// gRPC refusals took p99 10.8 s against 1.0 s for HTTP, whose windows the kernel manages.
//
// Larger windows let a request arrive in one go. They bound how much a client can send before
// the server reads it, so they are kept to a few requests' worth (memory per connection at worst:
// CONNECTION_WINDOW_BYTES).
import type * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

/** SETTINGS_INITIAL_WINDOW_SIZE: bytes one call may send ahead (a DenseNet-121 FP32 image and more). */
export const STREAM_WINDOW_BYTES = 1024 * 1024;
/** The connection's window, shared by its calls. */
export const CONNECTION_WINDOW_BYTES = 4 * 1024 * 1024;

/** The private parts of grpc-js's Server this reaches into (checked by flow-control.test.ts). */
interface GrpcServerInternals {
  commonServerOptions?: http2.ServerOptions;
  http2Servers?: Map<http2.Http2Server, unknown>;
}

/** Call before createConnectionInjector / bindAsync: the HTTP/2 server is created from these options. */
export function widenStreamWindow(server: grpc.Server): void {
  const internals = server as unknown as GrpcServerInternals;
  if (!internals.commonServerOptions) throw new Error('grpc-js internals changed: no commonServerOptions (see flow-control.ts)');
  internals.commonServerOptions.settings = { ...internals.commonServerOptions.settings, initialWindowSize: STREAM_WINDOW_BYTES };
}

/** Call after createConnectionInjector: widens each new connection's window. */
export function widenConnectionWindows(server: grpc.Server): void {
  const servers = (server as unknown as GrpcServerInternals).http2Servers;
  if (!servers) throw new Error('grpc-js internals changed: no http2Servers (see flow-control.ts)');
  for (const http2Server of servers.keys()) {
    http2Server.on('session', (session: http2.ServerHttp2Session) => {
      session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    });
  }
}
