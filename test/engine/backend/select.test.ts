// Backend selection: auto falls back without an error; an explicit backend that cannot start says why.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selectBackend } from '../../../src/engine/backend/select';

describe('backend selection', () => {
  it('auto skips what cannot start (tfjs-node-gpu absent here, software WebGPU) and reports why', async () => {
    const info = await selectBackend('auto');
    assert.ok(['tensorflow', 'webgpu', 'wasm'].includes(info.backend), info.backend);
    if (info.backend === 'wasm') {
      assert.match(info.name, /WebAssembly/);
      assert.ok(
        info.skipped.some((s) => s.startsWith('cuda: ')),
        info.skipped.join('; '),
      );
    }
  });

  it('an explicitly requested CUDA backend that is missing is a clear error with what to do', async (t) => {
    let requireable = true;
    try {
      require.resolve('@tensorflow/tfjs-node-gpu');
    } catch {
      requireable = false;
    }
    if (requireable) {
      t.skip('@tensorflow/tfjs-node-gpu is installed here: there is no missing CUDA backend to ask for');
      return;
    }
    await assert.rejects(selectBackend('cuda'), (err: Error) => {
      assert.match(err.message, /device 'cuda' is not available: @tensorflow\/tfjs-node-gpu is not installed/);
      assert.match(err.message, /CUDA 11\.2 and cuDNN 8\.1/);
      assert.match(err.message, /\(at device\)/);
      return true;
    });
  });
});
