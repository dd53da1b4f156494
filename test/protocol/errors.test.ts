// What the operating system says about a file reaches the user in words, with the file and what to do; a config or
// engine error keeps its own code, and anything else is 'internal'.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { formatError, LoraPlusError, toErrorInfo } from '../../src/protocol/errors';
import { tempDir } from '../helpers/shared';

const osError = (code: string, file: string) =>
  Object.assign(new Error(`${code}: something, write '${file}'`), { code, path: file, errno: -28, syscall: 'write' });

describe('toErrorInfo', () => {
  it('a full disk, a read-only file system and missing permissions name the file and say what to do', () => {
    const full = toErrorInfo(osError('ENOSPC', '/runs/a/checkpoints/step-9.tmp-1/optimizer.safetensors'));
    assert.deepEqual(
      [full.code, full.message, full.file],
      ['fs/enospc', 'no space left on the device', '/runs/a/checkpoints/step-9.tmp-1/optimizer.safetensors'],
    );
    assert.match(formatError(full), /^\/runs\/a\/checkpoints\/.*: no space left on the device\. Free some space/);
    assert.equal(toErrorInfo(osError('EROFS', '/mnt/ro/runs')).message, 'the file system is read-only');
    assert.equal(toErrorInfo(osError('EACCES', '/root/x')).code, 'fs/eacces');
  });

  it('a real error from the file system comes out the same way', () => {
    const file = path.join(tempDir(), 'a-file');
    fs.writeFileSync(file, '');
    let caught: unknown;
    try {
      fs.mkdirSync(path.join(file, 'sub'));
    } catch (err) {
      caught = err;
    }
    const info = toErrorInfo(caught);
    assert.equal(info.code, 'fs/enotdir');
    assert.equal(info.file, path.join(file, 'sub'));
  });

  it('keeps an engine error as it is; anything else is internal', () => {
    const e = new LoraPlusError({ code: 'config/invalid', message: 'bad', yamlPath: 'lora.r' });
    assert.equal(toErrorInfo(e), e.info);
    assert.deepEqual(toErrorInfo(new TypeError('x is undefined')), { code: 'internal', message: 'x is undefined' });
  });
});
