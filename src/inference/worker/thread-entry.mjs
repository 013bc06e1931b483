// Worker-thread entry. The service runs from TypeScript sources through tsx, and Node 20 does
// not pass the main thread's --import hooks on to worker threads: register tsx here, then load
// the real worker body.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
