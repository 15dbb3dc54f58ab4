import sealModule from 'node-seal';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';

type SealLoader = () => Promise<SEALLibrary>;

/**
 * node-seal 6 ships a UMD build for Node with ES-style type declarations; under NodeNext its default import is
 * typed as the module object while at run time it is the loader itself. This is the one place that bridges it.
 */
export const loadSeal: SealLoader = (sealModule as unknown as { default?: SealLoader }).default ?? (sealModule as unknown as SealLoader);
