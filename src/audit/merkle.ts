import crypto from 'node:crypto';

/**
 * RFC 9162 (Certificate Transparency 2.0) section 2.1 Merkle trees: hashes, inclusion and consistency proofs,
 * and their verification. Domain separation: a leaf is hashed with a 0x00 prefix, an interior node with 0x01,
 * so a leaf can never pose as a node.
 */
export const LEAF_PREFIX = 0x00;
export const NODE_PREFIX = 0x01;

export type Hash = Buffer;

// One-shot hashing (crypto.hash) is markedly faster than createHash for the short inputs of a Merkle tree.
const sha256 = (data: Buffer): Hash => crypto.hash('sha256', data, 'buffer') as unknown as Buffer;
const leafPrefix = Buffer.from([LEAF_PREFIX]);
const nodePrefix = Buffer.from([NODE_PREFIX]);

export const emptyRoot = (): Hash => sha256(Buffer.alloc(0));
export const leafHash = (leaf: Buffer | string): Hash => sha256(Buffer.concat([leafPrefix, typeof leaf === 'string' ? Buffer.from(leaf) : leaf]));
export const nodeHash = (left: Hash, right: Hash): Hash => sha256(Buffer.concat([nodePrefix, left, right]));

/** The largest power of two strictly less than n (n > 1). */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * An append-only tree that keeps every complete power-of-two subtree, so that any MTH(D[a:b]) the RFC's
 * recursion asks for costs O(log n) hashes, and a proof O(log² n). Preconditions: hashes are 32 bytes.
 */
export class MerkleTree {
  /** levels[h][i] is the hash of the complete subtree of 2^h leaves starting at leaf i·2^h. */
  private readonly levels: Hash[][] = [[]];

  get size(): number {
    return this.levels[0]!.length;
  }

  append(hash: Hash): void {
    this.levels[0]!.push(hash);
    let height = 0;
    let index = this.levels[0]!.length - 1;
    while (index % 2 === 1) {
      const level = this.levels[height]!;
      const parent = nodeHash(level[index - 1]!, level[index]!);
      if (!this.levels[height + 1]) this.levels[height + 1] = [];
      this.levels[height + 1]!.push(parent);
      height += 1;
      index = (index - 1) / 2;
    }
  }

  leafHashAt(index: number): Hash {
    const hash = this.levels[0]![index];
    if (!hash) throw new RangeError(`no leaf ${index}`);
    return hash;
  }

  /** MTH(D[start:end]) for 0 ≤ start < end ≤ size. */
  rangeHash(start: number, end: number): Hash {
    const size = end - start;
    if (size <= 0 || end > this.size) throw new RangeError('empty or out-of-range subtree');
    if ((size & (size - 1)) === 0 && start % size === 0) {
      const height = Math.log2(size);
      return this.levels[height]![start / size]!;
    }
    const k = largestPowerOfTwoBelow(size);
    return nodeHash(this.rangeHash(start, start + k), this.rangeHash(start + k, end));
  }

  root(size: number = this.size): Hash {
    if (size === 0) return emptyRoot();
    return this.rangeHash(0, size);
  }

  /** PATH(m, D[0:n]) of RFC 9162 section 2.1.3.1. */
  inclusionProof(leafIndex: number, treeSize: number): Hash[] {
    if (leafIndex < 0 || leafIndex >= treeSize || treeSize > this.size) throw new RangeError('leaf index or tree size out of range');
    const path: Hash[] = [];
    const walk = (m: number, start: number, end: number) => {
      const n = end - start;
      if (n === 1) return;
      const k = largestPowerOfTwoBelow(n);
      if (m < k) {
        walk(m, start, start + k);
        path.push(this.rangeHash(start + k, end));
      } else {
        walk(m - k, start + k, end);
        path.push(this.rangeHash(start, start + k));
      }
    };
    walk(leafIndex, 0, treeSize);
    return path;
  }

  /** PROOF(m, D[0:n]) of RFC 9162 section 2.1.4.1. */
  consistencyProof(first: number, second: number): Hash[] {
    if (first <= 0 || first > second || second > this.size) throw new RangeError('sizes out of range');
    const proof: Hash[] = [];
    const subproof = (m: number, start: number, end: number, complete: boolean) => {
      const n = end - start;
      if (m === n) {
        if (!complete) proof.push(this.rangeHash(start, end));
        return;
      }
      const k = largestPowerOfTwoBelow(n);
      if (m <= k) {
        subproof(m, start, start + k, complete);
        proof.push(this.rangeHash(start + k, end));
      } else {
        subproof(m - k, start + k, end, false);
        proof.push(this.rangeHash(start, start + k));
      }
    };
    subproof(first, 0, second, true);
    return proof;
  }
}

export class ProofError extends Error {
  static readonly code = 'ERR_PROOF';
}

/** RFC 9162 section 2.1.3.2. Throws ProofError saying what did not match. */
export function verifyInclusion(leafIndex: number, treeSize: number, leaf: Hash, path: Hash[], root: Hash): void {
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize) || leafIndex < 0 || leafIndex >= treeSize) {
    throw new ProofError('leaf index out of range for the tree size');
  }
  if (path.some((hash) => hash.length !== 32)) throw new ProofError('a proof hash is not 32 bytes');
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) throw new ProofError('the proof is longer than the tree is deep');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError('the proof is shorter than the tree is deep');
  if (!r.equals(root)) throw new ProofError('the recomputed root does not match');
}

/** RFC 9162 section 2.1.4.2. Throws ProofError saying what did not match. */
export function verifyConsistency(first: number, second: number, firstRoot: Hash, secondRoot: Hash, proof: Hash[]): void {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second) {
    throw new ProofError('the first size must not exceed the second');
  }
  if (proof.some((hash) => hash.length !== 32)) throw new ProofError('a proof hash is not 32 bytes');
  if (first === second) {
    if (proof.length !== 0) throw new ProofError('equal sizes take an empty proof');
    if (!firstRoot.equals(secondRoot)) throw new ProofError('equal sizes with different roots');
    return;
  }
  if (first === 0) {
    if (proof.length !== 0) throw new ProofError('an empty first tree takes an empty proof');
    return;
  }
  if (proof.length === 0) throw new ProofError('the proof is empty');
  const path = (first & (first - 1)) === 0 ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofError('the proof is longer than needed');
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError('the proof is shorter than needed');
  if (!fr.equals(firstRoot)) throw new ProofError('the proof does not lead to the first root');
  if (!sr.equals(secondRoot)) throw new ProofError('the proof does not lead to the second root');
}

/** MTH over a list of leaf hashes, computed from scratch (the verifier's independent recomputation). */
export function rootOfLeafHashes(hashes: Hash[]): Hash {
  const tree = new MerkleTree();
  for (const hash of hashes) tree.append(hash);
  return tree.root();
}
