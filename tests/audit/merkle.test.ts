import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { leafHash, MerkleTree, nodeHash, ProofError, rootOfLeafHashes, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';

/** The RFC's definition, written as plainly as possible, to check the cached tree against. */
function referenceRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return crypto.createHash('sha256').digest();
  if (leaves.length === 1) return leafHash(leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

const leaves = Array.from({ length: 37 }, (_, index) => Buffer.from(`leaf ${index}`));
const tree = new MerkleTree();
for (const leaf of leaves) tree.append(leafHash(leaf));
// One more leaf, so that proofs can be presented against a neighbouring checkpoint.
const biggerTree = new MerkleTree();
for (const leaf of [...leaves, Buffer.from('leaf 37')]) biggerTree.append(leafHash(leaf));

describe('RFC 9162 Merkle tree', () => {
  it('the root of every prefix matches the RFC definition', () => {
    for (let size = 1; size <= leaves.length; size++) expect(tree.root(size).equals(referenceRoot(leaves.slice(0, size)))).toBe(true);
  });

  it('matches the known empty-tree root', () => {
    expect(new MerkleTree().root().toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('every inclusion proof of every size verifies', () => {
    for (let size = 1; size <= leaves.length; size++) {
      for (let index = 0; index < size; index++) {
        verifyInclusion(index, size, tree.leafHashAt(index), tree.inclusionProof(index, size), tree.root(size));
      }
    }
  });

  it('every consistency proof between every pair of sizes verifies', () => {
    for (let first = 1; first <= leaves.length; first++) {
      for (let second = first; second <= leaves.length; second++) {
        verifyConsistency(first, second, tree.root(first), tree.root(second), tree.consistencyProof(first, second));
      }
    }
  });

  it('rootOfLeafHashes agrees with the tree', () => {
    expect(rootOfLeafHashes(leaves.map((leaf) => leafHash(leaf))).equals(tree.root())).toBe(true);
  });
});

const flipBit = (hash: Buffer, bit: number) => {
  const copy = Buffer.from(hash);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
};

describe('broken inclusion proofs all fail', () => {
  const index = 13;
  const size = 37;
  const proof = tree.inclusionProof(index, size);
  const root = tree.root(size);
  const leaf = tree.leafHashAt(index);
  const cases: Array<{ name: string; run: () => void }> = [
    { name: 'flipped bit 3 of proof[0]', run: () => verifyInclusion(index, size, leaf, [flipBit(proof[0]!, 3), ...proof.slice(1)], root) },
    { name: 'flipped bit in the last proof hash', run: () => verifyInclusion(index, size, leaf, [...proof.slice(0, -1), flipBit(proof.at(-1)!, 200)], root) },
    { name: 'wrong index', run: () => verifyInclusion(index + 1, size, leaf, proof, root) },
    { name: 'wrong size (a proof for 37 leaves against the checkpoint of 38)', run: () => verifyInclusion(index, size + 1, leaf, proof, biggerTree.root()) },
    { name: 'wrong size (smaller tree, other depth)', run: () => verifyInclusion(index, 16, leaf, proof, root) },
    { name: 'index beyond size', run: () => verifyInclusion(size, size, leaf, proof, root) },
    { name: 'empty proof', run: () => verifyInclusion(index, size, leaf, [], root) },
    { name: 'an extra hash appended', run: () => verifyInclusion(index, size, leaf, [...proof, proof[0]!], root) },
    { name: 'last hash dropped', run: () => verifyInclusion(index, size, leaf, proof.slice(0, -1), root) },
    { name: 'another leaf', run: () => verifyInclusion(index, size, tree.leafHashAt(index + 1), proof, root) },
    { name: 'a leaf posing as a node (unprefixed hash)', run: () => verifyInclusion(index, size, crypto.createHash('sha256').update(leaves[index]!).digest(), proof, root) },
    { name: 'an interior node posing as a leaf', run: () => verifyInclusion(index - 1, size - 1, nodeHash(tree.leafHashAt(12), tree.leafHashAt(13)), tree.inclusionProof(index, size).slice(1), root) },
    { name: 'swapped roots', run: () => verifyInclusion(index, size, leaf, proof, tree.root(size - 1)) },
    { name: 'a short hash', run: () => verifyInclusion(index, size, leaf, [proof[0]!.subarray(0, 31), ...proof.slice(1)], root) },
  ];
  it.each(cases)('$name', ({ run }) => expect(run).toThrow(ProofError));
});

describe('broken consistency proofs all fail', () => {
  const first = 11;
  const second = 37;
  const proof = tree.consistencyProof(first, second);
  const [firstRoot, secondRoot] = [tree.root(first), tree.root(second)];
  const cases: Array<{ name: string; run: () => void }> = [
    { name: 'flipped bit 3 of proof[0]', run: () => verifyConsistency(first, second, firstRoot, secondRoot, [flipBit(proof[0]!, 3), ...proof.slice(1)]) },
    { name: 'swapped roots', run: () => verifyConsistency(first, second, secondRoot, firstRoot, proof) },
    { name: 'wrong first size', run: () => verifyConsistency(first + 1, second, firstRoot, secondRoot, proof) },
    { name: 'wrong second size (against the checkpoint of 38)', run: () => verifyConsistency(first, second + 1, firstRoot, biggerTree.root(), proof) },
    { name: 'empty proof', run: () => verifyConsistency(first, second, firstRoot, secondRoot, []) },
    { name: 'truncated proof', run: () => verifyConsistency(first, second, firstRoot, secondRoot, proof.slice(0, -1)) },
    { name: 'first larger than second', run: () => verifyConsistency(second, first, secondRoot, firstRoot, proof) },
    { name: 'a rewritten history (different first root)', run: () => verifyConsistency(first, second, leafHash('forged'), secondRoot, proof) },
  ];
  it.each(cases)('$name', ({ run }) => expect(run).toThrow(ProofError));
});
