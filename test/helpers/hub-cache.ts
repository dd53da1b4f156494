// A Hugging Face cache as huggingface_hub builds it, for tests: blobs named by sha256 (LFS files) or git sha1,
// snapshots/<commit>/<file> as relative symlinks into blobs/, refs/<revision> holding the commit.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function sha256(bytes: Buffer): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** git's blob id: sha1 of "blob <size>\0" + bytes (the etag of a file the Hub keeps in git). */
export function gitOid(bytes: Buffer): string {
  return crypto.createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

/** The files of a folder (one level), by name. */
export function filesOf(dir: string): Record<string, Buffer> {
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((n) => fs.statSync(path.join(dir, n)).isFile())
      .map((n) => [n, fs.readFileSync(path.join(dir, n))]),
  );
}

/** What hf_hub_download leaves: blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>, refs/<rev>. */
export function cacheRepo(
  cache: string,
  id: string,
  commit: string,
  files: Record<string, Buffer>,
  refs: string[] = ['main'],
) {
  const repo = path.join(cache, `models--${id.replace('/', '--')}`);
  const snapshot = path.join(repo, 'snapshots', commit);
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  for (const [name, bytes] of Object.entries(files)) {
    const etag = name.endsWith('.safetensors') ? sha256(bytes) : gitOid(bytes);
    fs.writeFileSync(path.join(repo, 'blobs', etag), bytes);
    const pointer = path.join(snapshot, name);
    fs.mkdirSync(path.dirname(pointer), { recursive: true });
    fs.symlinkSync(path.relative(path.dirname(pointer), path.join(repo, 'blobs', etag)), pointer);
  }
  for (const ref of refs) {
    fs.mkdirSync(path.dirname(path.join(repo, 'refs', ref)), { recursive: true });
    fs.writeFileSync(path.join(repo, 'refs', ref), commit); // no newline, as huggingface_hub writes it
  }
  return { repo, snapshot };
}
