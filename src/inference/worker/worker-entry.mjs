// Entry of an inference worker, as a thread or as a child process, when the service runs from
// its TypeScript sources through tsx (tests, `npm run dev`); compiled, worker-channel.ts starts
// dist/…/worker-main.js directly and this file is not used (nor built). Node 20 passes the main
// thread's --import hooks neither to worker threads nor (we fork with empty execArgv) to child
// processes: register tsx here, then load the real worker body.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
