// A fast batched matmul for the tfjs wasm backend, for attention (q·kᵀ, att·v and their gradients).
//
// tfjs-backend-wasm 4.22 runs a matmul on XNNPACK only when both operands are 2-D and untransposed; every batched
// or transposed product goes to a scalar triple loop at 1–3 GFLOP/s, and attention is made of exactly those: over
// half of a stories260k training step. This file adds the missing path: a small WebAssembly SIMD kernel, generated
// below as bytes (no toolchain needed), that reads and writes the backend's own heap, so no data is copied.
// A transposed left operand is read with swapped strides; a transposed right operand is first made contiguous with
// the backend's Transpose kernel (a fast C++ copy; in attention it is the small [T, head_dim] one).
// Products the kernel does not cover (2-D untransposed, n not a multiple of 4, broadcast batches) keep the stock
// kernel. Results equal the stock kernel's up to float rounding order; a test compares them.
import * as tf from '@tensorflow/tfjs';

// ---- the kernel, as WebAssembly bytes ---------------------------------------------------------------------------
// bmm4/bmm8(a, b, c, batch, m, k, n, strideA, strideB, rowStepA, colStepA): for each batch element,
// C[m×n] = A[m×k] · B[k×n], f32, B and C row-major, A element (i, p) at a + i·rowStepA + p·colStepA; pointers and
// steps in bytes (a batch stride of 0 broadcasts an operand). n must be a multiple of 4 (bmm4) or 8 (bmm8). Rows
// are done four at a time (4 × 4 or 4 × 8 accumulators), then one at a time for the remainder.

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: 0x0c,
  brIf: 0x0d,
  get: 0x20,
  set: 0x21,
  tee: 0x22,
  i32: 0x41,
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  geU: [0x4f],
  gtU: [0x4b],
};
const simd = (code: number, ...rest: number[]) => [0xfd, ...uleb(code), ...rest];
const MEMARG = [2, 0]; // align 2^2 (a hint), offset 0
const v128Load = simd(0x00, ...MEMARG);
const v128Store = simd(0x0b, ...MEMARG);
const loadSplat = simd(0x09, ...MEMARG); // v128.load32_splat
const f32x4Add = simd(0xe4);
const f32x4Mul = simd(0xe6);
const v128Zero = simd(0x0c, ...new Array(16).fill(0));

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const str = (s: string) => vec([...s].map((ch) => [ch.charCodeAt(0)]));

// Locals: the 11 parameters, then scratch i32s, then up to 8 v128 accumulators.
const [A, B, C, BATCH, M, K, N, SA, SB, ROW_STEP_A, COL_STEP_A] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
const [BI, I, J, P, PB, PC, ROWB, ROWC] = [11, 12, 13, 14, 15, 16, 17, 18];
const PA = [19, 20, 21, 22]; // A's row pointers, one per row of the block
const ACC = [23, 24, 25, 26, 27, 28, 29, 30]; // acc[r·quads + q]
const get = (l: number) => [op.get, l];
const set = (l: number) => [op.set, l];
const konst = (n: number) => [op.i32, ...sleb(n)];
const addTo = (l: number, ...value: number[]) => [...get(l), ...value, ...op.add, ...set(l)];
const loop = (exitIf: number[], body: number[]) => [
  ...op.block,
  ...op.loop,
  ...exitIf,
  op.brIf,
  1,
  ...body,
  op.br,
  0,
  ...op.end,
  ...op.end,
];

/** Code for `rows` rows starting at row I: every group of 4·quads columns J, each a full pass over k. */
function rowBlock(rows: number, quads: number): number[] {
  const rs = [...Array(rows).keys()];
  const qs = [...Array(quads).keys()];
  const acc = (r: number, q: number) => ACC[r * quads + q];
  return [
    ...konst(0),
    ...set(J),
    ...loop(
      [...get(J), ...get(N), ...op.geU],
      [
        ...rs.flatMap((r) => qs.flatMap((q) => [...v128Zero, ...set(acc(r, q))])),
        // PA_r = A + (I + r)·rowStepA; PB = B + J·4
        ...rs.flatMap((r) => [
          ...get(A),
          ...get(I),
          ...konst(r),
          ...op.add,
          ...get(ROW_STEP_A),
          ...op.mul,
          ...op.add,
          ...set(PA[r]),
        ]),
        ...get(B),
        ...get(J),
        ...konst(4),
        ...op.mul,
        ...op.add,
        ...set(PB),
        ...konst(0),
        ...set(P),
        // for P < k: acc[r][q] += A[I+r][P] · B[P][J+4q … J+4q+3]
        ...loop(
          [...get(P), ...get(K), ...op.geU],
          [
            ...rs.flatMap((r) =>
              qs.flatMap((q) => [
                ...get(acc(r, q)),
                ...get(PA[r]),
                ...loadSplat,
                ...get(PB),
                ...(q ? [...konst(16 * q), ...op.add] : []),
                ...v128Load,
                ...f32x4Mul,
                ...f32x4Add,
                ...set(acc(r, q)),
              ]),
            ),
            ...rs.flatMap((r) => addTo(PA[r], ...get(COL_STEP_A))),
            ...addTo(PB, ...get(ROWB)),
            ...addTo(P, ...konst(1)),
          ],
        ),
        // C[I+r][J …] = acc[r]
        ...get(C),
        ...get(I),
        ...get(ROWC),
        ...op.mul,
        ...op.add,
        ...get(J),
        ...konst(4),
        ...op.mul,
        ...op.add,
        ...set(PC),
        ...rs.flatMap((r) =>
          qs.flatMap((q) => [
            ...get(PC),
            ...(r ? [...konst(r), ...get(ROWC), ...op.mul, ...op.add] : []),
            ...(q ? [...konst(16 * q), ...op.add] : []),
            ...get(acc(r, q)),
            ...v128Store,
          ]),
        ),
        ...addTo(J, ...konst(4 * quads)),
      ],
    ),
  ];
}

function kernelBody(quads: number): number[] {
  const code = [
    ...get(N),
    ...konst(4),
    ...op.mul,
    ...set(ROWB),
    ...get(N),
    ...konst(4),
    ...op.mul,
    ...set(ROWC),
    ...konst(0),
    ...set(BI),
    ...loop(
      [...get(BI), ...get(BATCH), ...op.geU],
      [
        ...konst(0),
        ...set(I),
        ...loop(
          [...get(I), ...konst(4), ...op.add, ...get(M), ...op.gtU],
          [...rowBlock(4, quads), ...addTo(I, ...konst(4))],
        ), // 4 rows at a time
        ...loop([...get(I), ...get(M), ...op.geU], [...rowBlock(1, quads), ...addTo(I, ...konst(1))]), // the remaining rows
        ...addTo(A, ...get(SA)),
        ...addTo(B, ...get(SB)),
        ...get(C),
        ...get(M),
        ...get(ROWC),
        ...op.mul,
        ...op.add,
        ...set(C),
        ...addTo(BI, ...konst(1)),
      ],
    ),
    ...op.end,
  ];
  const locals = vec([
    [...uleb(PA[3] - BI + 1), I32],
    [...uleb(ACC.length), V128],
  ]);
  return [...uleb(locals.length + code.length), ...locals, ...code];
}

/** The module: imports the backend's memory (shared when the backend runs threads); exports bmm4 and bmm8. */
function kernelModule(shared: boolean): Uint8Array {
  const limits = shared ? [0x03, ...uleb(1), ...uleb(65536)] : [0x00, ...uleb(1)];
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([[0x60, ...vec(new Array(11).fill([I32])), ...vec([])]])),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, ...limits]])),
    ...section(3, vec([[0], [0]])),
    ...section(
      7,
      vec([
        [...str('bmm4'), 0x00, 0],
        [...str('bmm8'), 0x00, 1],
      ]),
    ),
    ...section(10, vec([kernelBody(1), kernelBody(2)])),
  ]);
}

// ---- the tfjs kernel --------------------------------------------------------------------------------------------

type TensorInfo = tf.TensorInfo;
// The parts of tfjs-backend-wasm's BackendWasm (not exported as a type) and of WebAssembly (not in the TS libs
// this project compiles against) that are used here.
interface WasmMemory {
  buffer: ArrayBufferLike;
}
interface WasmBackend {
  wasm: { asm?: { memory?: WasmMemory }; wasmMemory?: WasmMemory };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  disposeData(id: tf.DataId): void;
}
const { WebAssembly } = globalThis as unknown as {
  WebAssembly: {
    Module: new (bytes: Uint8Array) => object;
    Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  };
};
type Bmm = (
  a: number,
  b: number,
  c: number,
  batch: number,
  m: number,
  k: number,
  n: number,
  sa: number,
  sb: number,
  rowStepA: number,
  colStepA: number,
) => void;

/**
 * Replaces the wasm backend's BatchMatMul with one that runs batched and transposed products on the SIMD kernel.
 * Call after tf.setBackend('wasm') (again is a no-op). Returns false (and changes nothing) where WebAssembly SIMD is missing.
 */
let installed = false;
export function installWasmBatchMatMul(): boolean {
  if (installed) return true;
  const backend = tf.backend() as unknown as WasmBackend;
  const memory = backend.wasm.asm?.memory ?? backend.wasm.wasmMemory;
  const stock = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!memory || !stock || !transpose) return false;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  let bmm4: Bmm, bmm8: Bmm;
  try {
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(kernelModule(shared)), { env: { memory } });
    [bmm4, bmm8] = [exports.bmm4 as Bmm, exports.bmm8 as Bmm];
  } catch {
    return false; // no WebAssembly SIMD: the stock kernel stays
  }
  const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;

  const kernelFunc: tf.KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const ra = a.shape.length;
    const rb = b.shape.length;
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const sizeA = batchA.reduce((x, y) => x * y, 1);
    const sizeB = batchB.reduce((x, y) => x * y, 1);
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const sameBatch = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
    const plain2d = sizeA === 1 && sizeB === 1 && !transposeA && !transposeB; // XNNPACK's case
    if (
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      plain2d ||
      n % 4 !== 0 ||
      !(sameBatch || sizeA === 1 || sizeB === 1)
    ) {
      return stock.kernelFunc(args);
    }
    const contiguous = (x: TensorInfo, transposed: boolean, batch: number): TensorInfo => {
      if (!transposed) return x;
      const r = x.shape.length;
      const x3 = { ...x, shape: [batch, x.shape[r - 2], x.shape[r - 1]] };
      return transpose.kernelFunc({
        inputs: { x: x3 } as unknown as tf.NamedTensorInfoMap,
        backend: args.backend,
        attrs: { perm: [0, 2, 1] },
      }) as TensorInfo;
    };
    const b2 = contiguous(b, transposeB, sizeB); // the kernel reads B's rows as vectors: they must be contiguous
    const batch = Math.max(sizeA, sizeB);
    const outBatch = sizeA >= sizeB ? batchA : batchB;
    const out = backend.makeOutput([...outBatch, m, n], 'float32');
    // Offsets are read after makeOutput: allocating may grow (and move) the heap's buffer, not the offsets.
    // A is read a scalar at a time, so a transposed A only changes its strides: row i, column p is at
    // (i·k + p)·4 bytes untransposed and at (p·m + i)·4 transposed.
    const [rowStepA, colStepA] = transposeA ? [4, m * 4] : [k * 4, 4];
    (n % 8 === 0 ? bmm8 : bmm4)(
      offset(a),
      offset(b2),
      offset(out),
      batch,
      m,
      k,
      n,
      sizeA === 1 ? 0 : m * k * 4,
      sizeB === 1 ? 0 : k * n * 4,
      rowStepA,
      colStepA,
    );
    if (b2 !== b) backend.disposeData(b2.dataId);
    return out;
  };

  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc });
  installed = true;
  return true;
}
