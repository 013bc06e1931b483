// Preload (node --require) that makes @tensorflow/tfjs-node unresolvable, as on a machine where
// it was never provisioned. Used by the engine test to prove the refusal message.
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@tensorflow/tfjs-node') {
    throw Object.assign(new Error("Cannot find module '@tensorflow/tfjs-node'"), { code: 'MODULE_NOT_FOUND' });
  }
  return resolve.call(this, request, ...rest);
};
