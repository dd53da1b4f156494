// Building blocks in src/models/layers.ts whose gradients are written by hand, against plain autodiff.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { layerNorm } from '../../src/models/layers';
import { maxAbsDiff, useBackend } from '../helpers/shared';

before(() => useBackend('wasm'));

test('layerNorm: output and dx match the autodiff formulation', () => {
  const x = tf.randomNormal([6, 5, 16], 0.5, 2, 'float32', 1);
  const w = tf.randomNormal([16], 1, 0.3, 'float32', 2) as tf.Tensor1D;
  const b = tf.randomNormal([16], 0, 0.3, 'float32', 3) as tf.Tensor1D;
  const dy = tf.randomNormal([6, 5, 16], 0, 1, 'float32', 4);
  const plain = (xx: tf.Tensor) => {
    const centred = tf.sub(xx, tf.mean(xx, -1, true));
    return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), 1e-5))), w), b);
  };
  const loss = (f: (t: tf.Tensor) => tf.Tensor) => (xx: tf.Tensor) => tf.sum(tf.mul(f(xx), dy)) as tf.Scalar;
  const ours = (xx: tf.Tensor) => layerNorm(xx, w, b, 1e-5);
  assert.ok(maxAbsDiff(ours(x).dataSync(), plain(x).dataSync()) < 1e-5);
  const gOurs = tf.grad(loss(ours))(x).dataSync();
  const gPlain = tf.grad(loss(plain))(x).dataSync();
  assert.ok(maxAbsDiff(gOurs, gPlain) < 1e-4, `dx differs by ${maxAbsDiff(gOurs, gPlain)}`);
});
