// Preloaded into jest and its workers (see the `test` script). On Node 24.9+ jest loads an ES module that a
// CommonJS file require()s natively, detecting that from vm.SourceTextModule#hasAsyncGraph. Nest 12's
// packages mix the two (@nestjs/throttler and other CommonJS packages require() the ESM-only
// @nestjs/common), and jest's native path refuses those graphs as cycles where Node itself loads them
// (the service runs on Node 24 without this). Hiding the capability keeps jest on the path it takes on
// older Node: such packages are compiled to CommonJS by the transform in jest.config.js.
const vm = require('node:vm');
if (vm.SourceTextModule && 'hasAsyncGraph' in vm.SourceTextModule.prototype) {
  delete vm.SourceTextModule.prototype.hasAsyncGraph;
}
