// Native libraries' chatter on the engine process's stderr (Dawn probing Vulkan, Mesa, TensorFlow's C++ logs, Node's
// warnings) goes to the output channel at debug level only; what the user must see (a crash) does not count as it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isNativeNoise } from '../../src/vscode/engine-process';

describe('engine output', () => {
  it('tells native noise from news', () => {
    const noise = [
      "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file",
      '    at InitializeVulkan (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/BackendVk.cpp:368)',
      'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.',
      'WARNING: lavapipe is not a conformant vulkan implementation, testing use only.',
      '2026-01-01 10:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:182] This TensorFlow binary is optimized',
      '(node:1234) ExperimentalWarning: WASI is an experimental feature',
      '(Use `node --trace-warnings ...` to show where the warning was created)',
    ];
    for (const l of noise) assert.ok(isNativeNoise(l), l);
    const news = [
      'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory',
      'TypeError: Cannot read properties of undefined (reading "shape")',
      '    at Trainer.trainStep (/ext/dist/engine-child.js:1234:56)',
    ];
    for (const l of news) assert.ok(!isNativeNoise(l), l);
  });
});
