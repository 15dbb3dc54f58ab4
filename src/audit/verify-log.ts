import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkLeafSlice, type LeafChunk } from './leaf-check.js';
import { MerkleTree, ProofError, verifyConsistency, verifyInclusion } from './merkle.js';


/**
 * The regulator's verifier, independent of the server's own tree: recompute every leaf hash and the root from
 * the log's entries, check the checkpoint's signature against the published keys, check that every checkpoint a
 * witness has seen before is consistent with the newer one, and reconcile each release with its leaf.
 */
export type CheckpointBody = { tree_size: number; root_hash: string; timestamp: string };
export type SignedCheckpoint = CheckpointBody & { jws: string };
export type LogEntry = { index: number; leaf: string };
export type Release = { job: string; receipt: string };
export type Finding = { check: string; ok: boolean; detail: string };

export type LogSnapshot = {
  checkpoint: SignedCheckpoint;
  entries: LogEntry[];
  jwks: JSONWebKeySet;
  /** Checkpoints seen earlier (the witness's memory), each with the server's consistency proof to the new one. */
  earlier: Array<{ checkpoint: SignedCheckpoint; consistencyPath: string[] }>;
  releases: Release[];
};

export async function verifyCheckpointSignature(checkpoint: SignedCheckpoint, jwks: JSONWebKeySet): Promise<CheckpointBody> {
  const { payload, protectedHeader } = await compactVerify(checkpoint.jws, createLocalJWKSet(jwks), { algorithms: ['EdDSA'] });
  if (protectedHeader.typ !== 'pds-checkpoint+jws') throw new Error('the JWS is not a checkpoint');
  const body = JSON.parse(new TextDecoder().decode(payload)) as CheckpointBody;
  if (body.tree_size !== checkpoint.tree_size || body.root_hash !== checkpoint.root_hash || body.timestamp !== checkpoint.timestamp) {
    throw new Error('the signed checkpoint differs from the one presented');
  }
  return body;
}

/** Splits the leaves over worker threads; small logs are checked in this thread. */
async function checkLeaves(leaves: string[]): Promise<LeafChunk[]> {
  const threads = leaves.length < 20_000 ? 1 : Math.max(1, Math.min(os.availableParallelism(), 8));
  const size = Math.ceil(leaves.length / threads) || 1;
  const slices = Array.from({ length: threads }, (_, index) => ({ first: index * size, leaves: leaves.slice(index * size, (index + 1) * size) }));
  if (threads === 1) return slices.map((slice) => checkLeafSlice(slice.first, slice.leaves));
  const script = new URL('./leaf-check-worker.ts', import.meta.url);
  return Promise.all(
    slices.map(
      (slice) =>
        new Promise<LeafChunk>((resolve, reject) => {
          // The worker runs TypeScript through tsx, like the rest of the service (no build step): a small bootstrap
          // registers tsx in the worker, then loads the checker.
          const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(script.href)}); })`;
          const worker = new Worker(bootstrap, { eval: true, workerData: slice });
          worker.once('message', (message: LeafChunk) => resolve({ ...message, hashes: Buffer.from(message.hashes) }));
          worker.once('error', reject);
        }),
    ),
  );
}

export async function verifyLog(snapshot: LogSnapshot): Promise<{ ok: boolean; findings: Finding[] }> {
  const findings: Finding[] = [];
  const record = (check: string, ok: boolean, detail: string) => findings.push({ check, ok, detail });

  let signed: CheckpointBody | undefined;
  try {
    signed = await verifyCheckpointSignature(snapshot.checkpoint, snapshot.jwks);
    record('checkpoint signature', true, `tree size ${signed.tree_size}, signed with a published platform key`);
  } catch (error) {
    record('checkpoint signature', false, error instanceof Error ? error.message : 'does not verify');
  }

  // Leaves: dense indexes, each leaf canonical JSON whose own index matches its place. Checked and hashed in
  // worker threads (one per core); the tree is built here from their hashes, in order.
  const tree = new MerkleTree();
  let leavesOk = true;
  const events = new Map<number, Record<string, unknown>>();
  const sequenceProblem = snapshot.entries.findIndex((entry, position) => entry.index !== position);
  if (sequenceProblem >= 0) {
    record('leaf sequence', false, `expected leaf ${sequenceProblem}, found ${snapshot.entries[sequenceProblem]!.index}`);
    leavesOk = false;
  }
  for (const chunk of await checkLeaves(snapshot.entries.map((entry) => entry.leaf))) {
    for (const problem of chunk.problems) {
      if (leavesOk) record('leaf content', false, problem.problem);
      leavesOk = false;
    }
    for (const release of chunk.releases) events.set(release.index, release.event);
    for (let offset = 0; offset < chunk.hashes.length; offset += 32) tree.append(chunk.hashes.subarray(offset, offset + 32));
  }
  if (leavesOk) record('leaf sequence', true, `${snapshot.entries.length} leaves, dense and canonical`);

  const root = tree.root().toString('hex');
  if (signed) {
    const sizeMatches = signed.tree_size === tree.size;
    record('tree size', sizeMatches, sizeMatches ? `${tree.size} leaves` : `the checkpoint covers ${signed.tree_size} leaves, the log has ${tree.size}`);
    const rootMatches = sizeMatches && root === signed.root_hash;
    record('root hash', rootMatches, rootMatches ? `recomputed root ${root.slice(0, 16)}… matches` : 'the recomputed root does not match the signed checkpoint');
  }

  for (const { checkpoint, consistencyPath } of snapshot.earlier) {
    const label = `consistency with the checkpoint of size ${checkpoint.tree_size}`;
    try {
      await verifyCheckpointSignature(checkpoint, snapshot.jwks);
      if (!signed) throw new Error('no trusted newer checkpoint');
      verifyConsistency(
        checkpoint.tree_size,
        signed.tree_size,
        Buffer.from(checkpoint.root_hash, 'hex'),
        Buffer.from(signed.root_hash, 'hex'),
        consistencyPath.map((hash) => Buffer.from(hash, 'hex')),
      );
      // And independently: the prefix of the log we hold must hash to the old root.
      if (checkpoint.tree_size > tree.size || tree.root(checkpoint.tree_size).toString('hex') !== checkpoint.root_hash) {
        throw new ProofError('the log no longer holds the history this checkpoint signed');
      }
      record(label, true, 'the newer log extends the older one');
    } catch (error) {
      record(label, false, error instanceof Error ? error.message : 'inconsistent');
    }
  }

  // Every release: a receipt that verifies, naming a leaf that records exactly this release.
  let releasesOk = true;
  for (const release of snapshot.releases) {
    try {
      const { payload, protectedHeader } = await compactVerify(release.receipt, createLocalJWKSet(snapshot.jwks), { algorithms: ['EdDSA'] });
      if (protectedHeader.typ !== 'pds-receipt+jws') throw new Error('not a receipt');
      const receipt = JSON.parse(new TextDecoder().decode(payload)) as { job: string; output_hash: string; audit_leaf_index: number };
      const event = events.get(receipt.audit_leaf_index);
      const details = event?.details as { outputHash?: string } | undefined;
      if (!event || event.type !== 'job.released' || event.job !== release.job || receipt.job !== release.job || details?.outputHash !== receipt.output_hash) {
        throw new Error(`its leaf ${receipt.audit_leaf_index} does not record this release`);
      }
      const proof = tree.inclusionProof(receipt.audit_leaf_index, tree.size);
      verifyInclusion(receipt.audit_leaf_index, tree.size, tree.leafHashAt(receipt.audit_leaf_index), proof, tree.root());
    } catch (error) {
      releasesOk = false;
      record(`release of ${release.job}`, false, error instanceof Error ? error.message : 'does not reconcile');
    }
  }
  const receiptJobs = new Set(snapshot.releases.map((release) => release.job));
  for (const [index, event] of events) {
    if (event.type === 'job.released' && !receiptJobs.has(String(event.job))) {
      releasesOk = false;
      record(`leaf ${index}`, false, `records a release of ${String(event.job)} that the service does not show as released`);
    }
  }
  if (releasesOk) record('releases', true, `${snapshot.releases.length} release(s) reconciled with their leaves and receipts`);

  return { ok: findings.every((finding) => finding.ok), findings };
}

/** Fetches what verifyLog needs through the API, as a regulator would, and keeps the witness's checkpoints. */
export async function fetchLogSnapshot(options: {
  server: string;
  token: string;
  witness: SignedCheckpoint[];
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  onProgress?: (done: number, total: number) => void;
}): Promise<LogSnapshot> {
  const get = async <T>(path: string): Promise<T> => {
    const response = await (options.fetch ?? fetch)(`${options.server.replace(/\/$/, '')}${path}`, { headers: { authorization: `Bearer ${options.token}` } });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return (await response.json()) as T;
  };
  const jwks = await get<JSONWebKeySet>('/.well-known/jwks.json');
  const checkpoint = await get<SignedCheckpoint>('/v1/audit/checkpoint');
  const entries: LogEntry[] = [];
  for (let start = 0; start < checkpoint.tree_size; start += 10_000) {
    const end = Math.min(checkpoint.tree_size, start + 10_000);
    const page = await get<{ entries: LogEntry[] }>(`/v1/audit/entries?start=${start}&end=${end}`);
    entries.push(...page.entries.map((entry) => ({ index: entry.index, leaf: entry.leaf })));
    options.onProgress?.(end, checkpoint.tree_size);
  }
  const earlier = [];
  for (const old of options.witness.filter((candidate) => candidate.tree_size > 0 && candidate.tree_size <= checkpoint.tree_size)) {
    const proof = old.tree_size === checkpoint.tree_size
      ? { consistency_path: [] as string[] }
      : await get<{ consistency_path: string[] }>(`/v1/audit/proofs/consistency?first=${old.tree_size}&second=${checkpoint.tree_size}`);
    earlier.push({ checkpoint: old, consistencyPath: proof.consistency_path });
  }
  const releases: Release[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await get<{ jobs: Array<{ id: string; releaseLeafIndex: number | null }> }>(`/v1/jobs?status=released&limit=1000&offset=${offset}`);
    for (const job of page.jobs) {
      const record = await get<{ receipt: string }>(`/v1/jobs/${job.id}/record`);
      releases.push({ job: job.id, receipt: record.receipt });
    }
    if (page.jobs.length < 1000) break;
  }
  // A checkpoint the witness holds but the service can no longer prove consistent is still checked (and fails).
  for (const old of options.witness.filter((candidate) => candidate.tree_size > checkpoint.tree_size)) {
    earlier.push({ checkpoint: old, consistencyPath: [] });
  }
  return { checkpoint, entries, jwks, earlier, releases };
}
