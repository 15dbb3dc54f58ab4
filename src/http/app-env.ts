import type { PrincipalRow } from '../identity/principals.js';

export type AppEnv = { Variables: { principal: PrincipalRow } };
