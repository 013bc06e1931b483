// Entry of an inference worker, as a thread or as a child process. The service runs from
// TypeScript sources through tsx, and Node 20 passes the main thread's --import hooks neither
// to worker threads nor (we fork with empty execArgv) to child processes: register tsx here,
// then load the real worker body.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
