// A small Hugging Face Hub on node:http, answering what @huggingface/hub, `loraplus download` and Python's
// huggingface_hub ask for, with the headers the real Hub sends:
//   GET  /api/models/ORG/NAME/revision/REV       model info (sha, siblings, config.model_type)
//   GET  /api/models/ORG/NAME/tree/REV[/DIR]     the file list, with oid, size and lfs {oid, size, pointerSize}
//   POST /api/models/ORG/NAME/paths-info/REV     the same for the paths asked for
//   HEAD|GET /ORG/NAME/resolve/REV/FILE          a file kept in git: 200 with ETag (git blob sha1), X-Repo-Commit,
//                                                Content-Length, Range; an LFS file: 302 to the CDN with X-Linked-Etag
//                                                (sha256), X-Linked-Size, X-Repo-Commit
//   GET  http://localhost:PORT/cdn/SHA256        the LFS bytes, with Range; on another host name (localhost, not
//                                                127.0.0.1) as the real CDN is, so clients must not follow with auth
// Errors carry X-Error-Code as the Hub's do: RepoNotFound (401), GatedRepo (401/403), RevisionNotFound and
// EntryNotFound (404). Every request is logged; `cut` breaks one transfer off mid-file, `stall` leaves it hanging.
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { FAMILIES } from '../../../src/models/registry';
import { SHARED } from '../../helpers/shared';
import { filesOf, gitOid, sha256 } from '../../helpers/hub-cache';

export interface Repo {
  id: string; // org/name
  files: Record<string, Buffer>;
  commit?: string; // default: derived from the id
  branches?: Record<string, string>; // default: main → commit
  gated?: boolean; // answer 401 (no token) or 403 (a token other than `token`) with X-Error-Code GatedRepo
}

export interface Logged {
  method: string;
  host: string;
  path: string;
  range?: string;
  auth?: string;
  served?: { file: string; start: number; bytes: number }; // what a GET sent of a file's content
}

export interface HubServer {
  endpoint: string; // http://127.0.0.1:PORT
  requests: Logged[];
  /** Breaks the next GET of `file` off after `bytes` bytes of content. */
  cut(file: string, bytes: number): void;
  /** Sends the next GET of `file` `bytes` bytes of content, then nothing more (a stalled transfer to stop). */
  stall(file: string, bytes: number): void;
  close(): Promise<void>;
}

const LFS = /\.(safetensors|bin|model|msgpack|onnx|h5)$/;

/** A model of ../shared/models this checkout's registry supports: qwen3 once its family is in, else llama. */
export { filesOf, gitOid, sha256 };

export const TINY = path.join(SHARED, 'models', 'qwen3' in FAMILIES ? 'tiny-random-qwen3' : 'tiny-random-llama3');

export function commitOf(repo: Repo): string {
  return repo.commit ?? createHash('sha1').update(repo.id).digest('hex');
}

function entry(name: string, bytes: Buffer) {
  if (!LFS.test(name)) return { type: 'file', oid: gitOid(bytes), size: bytes.length, path: name };
  const pointer = Buffer.from(
    `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(bytes)}\nsize ${bytes.length}\n`,
  );
  return {
    type: 'file',
    oid: gitOid(pointer),
    size: bytes.length,
    path: name,
    lfs: { oid: sha256(bytes), size: bytes.length, pointerSize: pointer.length },
  };
}

export async function startHub(repos: Repo[], opts: { token?: string } = {}): Promise<HubServer> {
  const byId = new Map(repos.map((r) => [r.id, r]));
  const requests: Logged[] = [];
  const cuts = new Map<string, { bytes: number; stall: boolean }>();
  let port = 0;

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, log: Logged): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const fail = (status: number, code: string, message: string) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: message }));
    };

    if (parts[0] === 'cdn') {
      const repo = repos.find((r) => Object.values(r.files).some((b) => sha256(b) === parts[1]));
      const [name, bytes] = Object.entries(repo?.files ?? {}).find(([, b]) => sha256(b) === parts[1]) ?? [];
      if (!name || !bytes) return fail(404, 'EntryNotFound', 'no such object');
      return send(req, res, log, name, bytes, { ETag: `"${sha256(bytes)}"` });
    }

    const api = parts[0] === 'api' && parts[1] === 'models';
    const [org, name, kind, revision, ...rest] = api ? parts.slice(2) : parts;
    const repo = byId.get(`${org}/${name}`);
    if (!repo) return fail(401, 'RepoNotFound', 'Repository not found');
    const auth = req.headers.authorization;
    if (repo.gated && auth !== `Bearer ${opts.token}`)
      return fail(auth ? 403 : 401, 'GatedRepo', `Access to model ${repo.id} is restricted.`);
    const commit = commitOf(repo);
    const branches = repo.branches ?? { main: commit };
    const sha = revision === commit ? commit : branches[revision];
    if (!sha) return fail(404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
    const names = Object.keys(repo.files).sort();

    if (api && kind === 'revision') {
      let modelType: unknown;
      try {
        modelType = (JSON.parse(repo.files['config.json']?.toString() ?? '{}') as { model_type?: unknown }).model_type;
      } catch {
        modelType = undefined;
      }
      return json(res, {
        _id: sha.slice(0, 24),
        id: repo.id,
        sha,
        private: false,
        gated: repo.gated ? 'manual' : false,
        downloads: 0,
        likes: 0,
        lastModified: '2025-01-01T00:00:00.000Z',
        config: { model_type: modelType },
        siblings: names.map((rfilename) => ({ rfilename })),
      });
    }
    if (api && kind === 'tree') {
      const dir = rest.join('/');
      const within = names.filter((n) => (dir ? n.startsWith(`${dir}/`) : true));
      const recursive = url.searchParams.get('recursive') === 'true';
      const depth = dir ? dir.split('/').length + 1 : 1;
      const listed = within.filter((n) => recursive || n.split('/').length === depth);
      const folders = recursive
        ? []
        : [
            ...new Set(
              within.filter((n) => n.split('/').length > depth).map((n) => n.split('/').slice(0, depth).join('/')),
            ),
          ];
      return json(res, [
        ...folders.map((p) => ({ type: 'directory', oid: gitOid(Buffer.from(p)), size: 0, path: p })),
        ...listed.map((n) => entry(n, repo.files[n])),
      ]);
    }
    if (api && kind === 'paths-info') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const asked = (JSON.parse(body || '{}') as { paths?: string[] }).paths ?? [];
        json(
          res,
          asked.filter((p) => p in repo.files).map((p) => entry(p, repo.files[p])),
        );
      });
      return;
    }
    if (!api && kind === 'resolve') {
      const file = rest.join('/');
      const bytes = repo.files[file];
      if (!bytes) return fail(404, 'EntryNotFound', `${file} does not exist on "${revision}"`);
      const e = entry(file, bytes);
      const common = { 'X-Repo-Commit': sha, 'Access-Control-Expose-Headers': 'X-Repo-Commit' };
      if (e.lfs) {
        res.writeHead(302, {
          ...common,
          Location: `http://localhost:${port}/cdn/${e.lfs.oid}?X-Amz-Signature=test`,
          ETag: `"${e.oid}"`,
          'X-Linked-Etag': `"${e.lfs.oid}"`,
          'X-Linked-Size': String(bytes.length),
          'Content-Length': '0',
        });
        return void res.end();
      }
      return send(req, res, log, file, bytes, { ...common, ETag: `"${e.oid}"` });
    }
    fail(404, 'EntryNotFound', `no route for ${url.pathname}`);
  };

  /** The bytes with Range support (206 + Content-Range), or a cut-off transfer when one is armed for this file. */
  function send(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    log: Logged,
    file: string,
    bytes: Buffer,
    extra: Record<string, string>,
  ): void {
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Math.min(Number(m[2]) + 1, bytes.length) : bytes.length;
    if (start >= bytes.length && bytes.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
      return void res.end();
    }
    const head = {
      ...extra,
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(end - start),
      'Accept-Ranges': 'bytes',
      ...(m ? { 'Content-Range': `bytes ${start}-${end - 1}/${bytes.length}` } : {}),
    };
    res.writeHead(m ? 206 : 200, head);
    if (req.method === 'HEAD') return void res.end();
    const cut = cuts.get(path.basename(file));
    if (cut !== undefined && cut.bytes < end - start) {
      cuts.delete(path.basename(file));
      log.served = { file, start, bytes: cut.bytes };
      // Flushed, then the connection dropped (or left hanging): the client gets exactly `cut` bytes of a longer body.
      res.write(bytes.subarray(start, start + cut.bytes), () => (cut.stall ? undefined : res.socket?.destroy()));
      return;
    }
    log.served = { file, start, bytes: end - start };
    res.end(bytes.subarray(start, end));
  }

  const server = http.createServer((req, res) => {
    const log: Logged = {
      method: req.method ?? 'GET',
      host: req.headers.host ?? '',
      path: req.url ?? '/',
      range: req.headers.range,
      auth: req.headers.authorization,
    };
    requests.push(log);
    try {
      handle(req, res, log);
    } catch (err) {
      res.writeHead(500);
      res.end(String(err));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    cut: (file, bytes) => void cuts.set(file, { bytes, stall: false }),
    stall: (file, bytes) => void cuts.set(file, { bytes, stall: true }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: http.ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(body);
}
